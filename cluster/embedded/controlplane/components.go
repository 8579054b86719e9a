package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/cache"
	cliflag "k8s.io/component-base/cli/flag"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// Each component is configured exactly like its real binary: through its own
// flag set, built from the component's option struct, fed with an argument list.
// None of their cobra commands is used (each would install a signal handler).

func parseInto(name string, sets cliflag.NamedFlagSets, args []string) error {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	for _, f := range sets.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s flags: %w", name, err)
	}
	return nil
}

type apiServer struct {
	opts *apiserveroptions.ServerRunOptions
}

func newAPIServer(args []string) (*apiServer, error) {
	s := apiserveroptions.NewServerRunOptions()
	if err := parseInto("kube-apiserver", s.Flags(), args); err != nil {
		return nil, err
	}
	return &apiServer{opts: s}, nil
}

// run blocks until ctx is cancelled and the server has shut down.
func (a *apiServer) run(ctx context.Context) error {
	completed, err := a.opts.Complete(ctx)
	if err != nil {
		return fmt.Errorf("kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return fmt.Errorf("kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	return apiserverapp.Run(ctx, completed)
}

type controllerManager struct {
	opts *kcmoptions.KubeControllerManagerOptions
}

func newControllerManager(args []string) (*controllerManager, error) {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, err
	}
	sets := s.Flags(kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases())
	if err := parseInto("kube-controller-manager", sets, args); err != nil {
		return nil, err
	}
	return &controllerManager{opts: s}, nil
}

func (c *controllerManager) run(ctx context.Context) error {
	cfg, err := c.opts.Config(ctx, kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases())
	if err != nil {
		return fmt.Errorf("kube-controller-manager config: %w", err)
	}
	return kcmapp.Run(ctx, cfg.Complete())
}

type scheduler struct{ opts *schedoptions.Options }

func newScheduler(args []string) (*scheduler, error) {
	o := schedoptions.NewOptions()
	if err := parseInto("kube-scheduler", *o.Flags, args); err != nil {
		return nil, err
	}
	return &scheduler{opts: o}, nil
}

func (s *scheduler) run(ctx context.Context) error {
	if s.opts.InformerName == nil {
		name, err := cache.NewInformerName("kube-scheduler")
		if err != nil {
			return err
		}
		s.opts.InformerName = name
	}
	cc, sched, err := schedapp.Setup(ctx, s.opts)
	if err != nil {
		return fmt.Errorf("kube-scheduler setup: %w", err)
	}
	err = schedapp.Run(ctx, cc, sched)
	if ctx.Err() != nil {
		// Without leader election Run always returns "finished without leader elect".
		return nil
	}
	return err
}
