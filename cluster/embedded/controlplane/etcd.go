package main

import (
	"fmt"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// etcdStopping is set just before etcd.Close(): from then on the errors each
// listener reports when it is closed ("use of closed network connection",
// "http: Server closed", ...) are expected and not logged.
var etcdStopping atomic.Bool

type quietOnStopCore struct{ zapcore.Core }

func (q quietOnStopCore) With(f []zapcore.Field) zapcore.Core {
	return quietOnStopCore{q.Core.With(f)}
}

func (q quietOnStopCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if etcdStopping.Load() && e.Message == "setting up serving from embedded etcd failed." {
		return ce
	}
	return q.Core.Check(e, ce)
}

func etcdLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg := zap.Config{
		Level:            zap.NewAtomicLevelAt(lvl),
		Encoding:         "console",
		EncoderConfig:    enc,
		OutputPaths:      []string{"stderr"},
		ErrorOutputPaths: []string{"stderr"},
		// Errors are logged with their message and fields; stack traces are noise here.
		DisableStacktrace: true,
	}
	lg, err := cfg.Build(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return quietOnStopCore{c} }))
	if err != nil {
		return nil, err
	}
	return lg.Named("etcd"), nil
}

// startEtcd starts a single-member etcd that listens on loopback only and keeps
// its data in <state>/etcd, so a restart with the same state dir keeps the cluster.
func startEtcd(stateDir string, clientPort, peerPort int, logLevel string, noFsync bool) (*embed.Etcd, string, error) {
	cfg := embed.NewConfig()
	cfg.Name = "kube-embedded"
	cfg.Dir = filepath.Join(stateDir, "etcd")
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.InitialClusterToken = "kube-embedded"
	cfg.ListenMetricsUrls = nil
	lg, err := etcdLogger(logLevel)
	if err != nil {
		return nil, "", err
	}
	cfg.Logger = "zap"
	cfg.LogLevel = logLevel
	cfg.LogOutputs = []string{"stderr"}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	cfg.UnsafeNoFsync = noFsync
	// The apiserver compacts every 5 minutes itself; keep a safety net for long runs.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "1h"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("etcd failed while starting: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", fmt.Errorf("etcd did not become ready within 60s")
	}
	return e, clientURL.String(), nil
}
