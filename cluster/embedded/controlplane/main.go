// kube-embedded runs a whole Kubernetes control plane in one process: embedded
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler, all built
// from the upstream k8s.io/kubernetes module and started through their exported
// option/run functions.
//
//	kube-embedded --state-dir DIR [--port 6443] [--etcd-port 12379]
//	              [--advertise-address 10.244.0.1] [--service-cidr 10.96.0.0/16]
//
// It prints exactly one line on stdout, "ready kubeconfig=<path>", once /readyz
// answers ok and the controller manager has created the default ServiceAccount.
// Everything else goes to stderr. SIGTERM/SIGINT stop it cleanly (exit 0).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/util/compatibility"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

// defaultControllers: what the embedded cluster needs for Deployments, Services,
// PDBs, namespaces, service accounts and nodes that stop renewing their Lease.
var defaultControllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"endpointslice-controller",
	"endpointslice-mirroring-controller",
	"endpoints-controller",
	"garbage-collector-controller",
	"namespace-controller",
	"disruption-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"pod-garbage-collector-controller",
	"node-lifecycle-controller",
	"taint-eviction-controller",
	"root-ca-certificate-publisher-controller",
	"clusterrole-aggregation-controller",
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type config struct {
	stateDir         string
	port             int
	etcdPort         int
	etcdPeerPort     int
	advertiseAddress string
	serviceCIDR      string
	clusterCIDR      string
	controllers      string
	logLevel         string
	verbosity        int
	etcdNoFsync      bool
	readyTimeout     time.Duration
	apiserverArgs    multiFlag
	kcmArgs          multiFlag
	schedulerArgs    multiFlag
}

func main() {
	os.Exit(run())
}

func run() int {
	var c config
	fs := flag.NewFlagSet("kube-embedded", flag.ContinueOnError)
	fs.StringVar(&c.stateDir, "state-dir", "", "directory for certificates, kubeconfig and etcd data (required; reused across runs)")
	fs.IntVar(&c.port, "port", 6443, "kube-apiserver secure port on 127.0.0.1")
	fs.IntVar(&c.etcdPort, "etcd-port", 12379, "etcd client port on 127.0.0.1")
	fs.IntVar(&c.etcdPeerPort, "etcd-peer-port", 0, "etcd peer port on 127.0.0.1 (default: etcd-port+1)")
	fs.StringVar(&c.advertiseAddress, "advertise-address", "10.244.0.1", "non-loopback IP the apiserver advertises (need not be configured on any interface; use the pod bridge gateway)")
	fs.StringVar(&c.serviceCIDR, "service-cidr", "10.96.0.0/16", "Service ClusterIP range")
	fs.StringVar(&c.clusterCIDR, "cluster-cidr", "10.244.0.0/16", "pod CIDR, informational for the controller manager (node CIDRs are not allocated)")
	fs.StringVar(&c.controllers, "controllers", strings.Join(defaultControllers, ","), "kube-controller-manager --controllers value")
	fs.StringVar(&c.logLevel, "log-level", "error", "lowest severity written to stderr: info, warning or error (warning adds ~35 benign \"Skipping API ...\" lines per start)")
	fs.IntVar(&c.verbosity, "v", 0, "klog verbosity (implies --log-level=info when > 0)")
	fs.BoolVar(&c.etcdNoFsync, "etcd-unsafe-no-fsync", false, "disable fsync in etcd (faster; data may be lost on a machine crash)")
	fs.DurationVar(&c.readyTimeout, "ready-timeout", 3*time.Minute, "give up if not ready within this time")
	fs.Var(&c.apiserverArgs, "apiserver-arg", "extra kube-apiserver flag, e.g. --apiserver-arg=--v=2 (repeatable; wins over defaults)")
	fs.Var(&c.kcmArgs, "controller-manager-arg", "extra kube-controller-manager flag (repeatable)")
	fs.Var(&c.schedulerArgs, "scheduler-arg", "extra kube-scheduler flag (repeatable)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if c.stateDir == "" {
		fmt.Fprintln(os.Stderr, "kube-embedded: --state-dir is required")
		return 2
	}
	if c.etcdPeerPort == 0 {
		c.etcdPeerPort = c.etcdPort + 1
	}
	if err := setupLogging(c.logLevel, c.verbosity); err != nil {
		fmt.Fprintln(os.Stderr, "kube-embedded:", err)
		return 2
	}
	if err := runControlPlane(&c); err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			err = fmt.Errorf("%w (another kube-embedded or etcd running? choose other --port/--etcd-port/--etcd-peer-port)", err)
		}
		klog.ErrorS(err, "kube-embedded failed")
		klog.Flush()
		return 1
	}
	klog.Flush()
	return 0
}

func setupLogging(level string, v int) error {
	// The real binaries call logsapi.ValidateAndApply from their cobra commands;
	// none of those run here. Should any code path apply a logging configuration
	// twice, ignore identical re-applies instead of failing with "logging
	// configuration was already applied earlier".
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	// We do not install component-base's text logger (that is what
	// ValidateAndApply would do): klog's own stderr output honours
	// -stderrthreshold, which is what makes the default quiet.
	threshold := map[string]string{"info": "INFO", "warning": "WARNING", "error": "ERROR"}[strings.ToLower(level)]
	if threshold == "" {
		return fmt.Errorf("--log-level must be info, warning or error, not %q", level)
	}
	if v > 0 {
		threshold = "INFO"
	}
	kfs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(kfs)
	for k, val := range map[string]string{
		"logtostderr":                      "true",
		"legacy_stderr_threshold_behavior": "false",
		"stderrthreshold":                  threshold,
		"v":                                fmt.Sprint(v),
	} {
		if err := kfs.Set(k, val); err != nil {
			return fmt.Errorf("klog flag %s: %w", k, err)
		}
	}
	return nil
}

func runControlPlane(c *config) error {
	start := time.Now()
	stateDir, err := filepath.Abs(c.stateDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	advertise := net.ParseIP(c.advertiseAddress)
	if advertise == nil || advertise.IsLoopback() || advertise.IsUnspecified() {
		return fmt.Errorf("--advertise-address %q must be a non-loopback IP (the apiserver refuses loopback endpoints)", c.advertiseAddress)
	}
	serviceIP, err := firstIP(c.serviceCIDR)
	if err != nil {
		return fmt.Errorf("--service-cidr: %w", err)
	}

	// 1. Credentials and kubeconfig.
	p := newPKI(stateDir)
	ips := []net.IP{net.ParseIP("127.0.0.1"), advertise, serviceIP}
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if err := p.ensure(ips, dns); err != nil {
		return fmt.Errorf("certificates in %s: %w", p.dir, err)
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", c.port)
	if err := p.writeKubeconfig(server); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}

	// 2. Build all component options first so a bad flag fails before anything starts.
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", c.etcdPort)
	api, err := newAPIServer(append([]string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", c.port),
		"--advertise-address=" + advertise.String(),
		"--cert-dir=" + filepath.Join(stateDir, "pki", "generated"),
		"--tls-cert-file=" + p.servingCert,
		"--tls-private-key-file=" + p.servingKey,
		"--client-ca-file=" + p.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-signing-key-file=" + p.saKey,
		"--service-account-key-file=" + p.saPub,
		"--service-cluster-ip-range=" + c.serviceCIDR,
		"--endpoint-reconciler-type=none",
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--profiling=false",
	}, c.apiserverArgs...))
	if err != nil {
		return err
	}
	kcm, err := newControllerManager(append([]string{
		"--kubeconfig=" + p.kubeconfig,
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--controllers=" + c.controllers,
		"--service-account-private-key-file=" + p.saKey,
		"--root-ca-file=" + p.caCert,
		"--cluster-cidr=" + c.clusterCIDR,
		"--allocate-node-cidrs=false",
		"--configure-cloud-routes=false",
		"--service-cluster-ip-range=" + c.serviceCIDR,
		"--secure-port=0",
		"--controller-shutdown-timeout=3s",
		"--profiling=false",
	}, c.kcmArgs...))
	if err != nil {
		return err
	}
	sched, err := newScheduler(append([]string{
		"--kubeconfig=" + p.kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
	}, c.schedulerArgs...))
	if err != nil {
		return err
	}
	// All three share the default component registry (feature gates, versions):
	// set it once, as each cobra command's PersistentPreRunE would.
	if err := compatibility.DefaultComponentGlobalsRegistry.Set(); err != nil {
		return err
	}

	sigCh := make(chan os.Signal, 2)
	signal.Notify(sigCh, syscall.SIGTERM, syscall.SIGINT)

	// 3. etcd.
	etcd, _, err := startEtcd(stateDir, c.etcdPort, c.etcdPeerPort, etcdLogLevel(c.logLevel, c.verbosity), c.etcdNoFsync)
	if err != nil {
		return err
	}
	klog.V(1).InfoS("etcd ready", "url", etcdURL, "elapsed", time.Since(start))

	// 4. Components. The apiserver gets its own context so it outlives the
	// controllers during shutdown.
	apiCtx, cancelAPI := context.WithCancel(context.Background())
	ctlCtx, cancelCtl := context.WithCancel(context.Background())
	defer cancelAPI()
	defer cancelCtl()
	type result struct {
		name string
		err  error
	}
	done := make(chan result, 3)
	var apiWG, ctlWG sync.WaitGroup
	startComponent := func(wg *sync.WaitGroup, name string, ctx context.Context, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f(ctx)
			done <- result{name, err}
		}()
	}
	startComponent(&apiWG, "kube-apiserver", apiCtx, api.run)

	restCfg, err := clientcmd.BuildConfigFromFlags("", p.kubeconfig)
	if err != nil {
		return err
	}
	restCfg.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}

	var failure error
	deadline := time.After(c.readyTimeout)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	phase := "apiserver" // → controllers → serviceaccount → ready
wait:
	for {
		select {
		case s := <-sigCh:
			klog.InfoS("signal received before ready, stopping", "signal", s)
			break wait
		case r := <-done:
			failure = fmt.Errorf("%s exited before ready: %v", r.name, r.err)
			break wait
		case <-deadline:
			failure = fmt.Errorf("not ready after %s (waiting for %s)", c.readyTimeout, phase)
			break wait
		case <-tick.C:
		}
		switch phase {
		case "apiserver":
			if readyz(client) == nil {
				klog.V(1).InfoS("kube-apiserver ready", "elapsed", time.Since(start))
				startComponent(&ctlWG, "kube-controller-manager", ctlCtx, kcm.run)
				startComponent(&ctlWG, "kube-scheduler", ctlCtx, sched.run)
				phase = "serviceaccount"
			}
		case "serviceaccount":
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
			cancel()
			if err == nil && readyz(client) == nil {
				klog.V(1).InfoS("control plane ready", "elapsed", time.Since(start))
				fmt.Printf("ready kubeconfig=%s\n", p.kubeconfig)
				phase = "ready"
			} else if err != nil && !apierrors.IsNotFound(err) {
				klog.V(2).InfoS("waiting for default ServiceAccount", "err", err)
			}
		case "ready":
			// Running: wait for a signal or a component failure.
			select {
			case s := <-sigCh:
				klog.InfoS("signal received, stopping", "signal", s)
			case r := <-done:
				failure = fmt.Errorf("%s exited unexpectedly: %v", r.name, r.err)
			}
			break wait
		}
	}
	// 5. Shutdown: controllers first, then the apiserver, then etcd. A second
	// signal or the hard deadline aborts the orderly shutdown.
	go func() {
		select {
		case <-sigCh:
			klog.Warning("second signal: exiting immediately")
		case <-time.After(8 * time.Second):
			klog.Warning("orderly shutdown took longer than 8s: exiting")
		}
		klog.Flush()
		if failure != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}()
	stopStart := time.Now()
	cancelCtl()
	waitTimeout(&ctlWG, 4*time.Second)
	cancelAPI()
	waitTimeout(&apiWG, 4*time.Second)
	etcdStopping.Store(true)
	etcd.Close()
	select {
	case <-etcd.Server.StopNotify():
	case <-time.After(2 * time.Second):
	}
	// Drain component results for the log.
	for {
		select {
		case r := <-done:
			if r.err != nil && !errors.Is(r.err, context.Canceled) && failure == nil {
				klog.V(1).InfoS("component stopped", "component", r.name, "err", r.err)
			}
			continue
		default:
		}
		break
	}
	klog.V(1).InfoS("stopped", "shutdown", time.Since(stopStart))
	return failure
}

func readyz(client *kubernetes.Clientset) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("readyz: %s", body)
	}
	return nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func etcdLogLevel(level string, v int) string {
	switch {
	case v >= 2:
		return "info"
	case strings.ToLower(level) == "info" || v == 1:
		return "warn"
	default:
		return "error"
	}
}

// firstIP returns network+1 of a CIDR, the address of the "kubernetes" Service.
func firstIP(cidr string) (net.IP, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, err
	}
	i := new(big.Int).SetBytes(n.IP)
	i.Add(i, big.NewInt(1))
	b := i.Bytes()
	ip := make(net.IP, len(n.IP))
	copy(ip[len(ip)-len(b):], b)
	return ip, nil
}
