// Command pdp is the policy decision point: it serves decisions over HTTP
// (docs/api.md) on facts read from a YAML state file
// (--state, reloaded when it changes) or from Redis (--redis).
//
// Every flag can also be set by an environment variable PDP_<FLAG>
// (--admin-addr is PDP_ADMIN_ADDR); a flag on the command line wins over its
// variable. `pdp --help` lists them. --version has no variable: a
// PDP_VERSION set for another purpose must not change what pdp does.
// Exactly one of --state and --redis is required.
//
// On SIGTERM or SIGINT pdp fails /health/ready at once and, for
// --shutdown-delay, keeps answering (closing each connection after its
// answer) so that load balancers take it out first; then it stops
// accepting connections, closes idle
// keep-alive ones, lets requests in flight finish for at most
// --shutdown-timeout, stops the state file watcher or the Redis change
// stream tailer, and exits.
//
// On SIGHUP pdp reopens its decision log file (--decision-log FILE), for
// logrotate; a SIGHUP never ends it.
//
// Sizes in bytes (--body-limit, --cache-max-cost, ...) take units: 64Ki,
// 256Mi, 1G.
//
// Exit status: 0 after a clean shutdown (SIGTERM or SIGINT), 1 when serving
// fails (a bad state file, a port in use, a shutdown that timed out), 2 on
// bad usage (an unknown flag, a bad value, a bad environment variable).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/extauthz"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/pdp/httpapi"
	"github.com/metalsoft-io/pdp/pdp/metrics"
	"github.com/metalsoft-io/pdp/policy"
	"github.com/metalsoft-io/pdp/sync/redisstate"
	"github.com/metalsoft-io/pdp/sync/statefile"
	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// config holds the flags.
type config struct {
	addr, adminAddr       string
	grpcAddr              string
	tlsCertFile           string
	tlsKeyFile            string
	tlsClientCAFile       string
	state, redis          string
	prefix                string
	configFile            string
	bodyLimit             int
	batchBodyLimit        int
	maxDepth              int
	maxConns              int
	headerLimit           int
	readTimeout           time.Duration
	writeTimeout          time.Duration
	evalTimeout           time.Duration
	reloadInterval        time.Duration
	staleness             time.Duration
	shutdownTimeout       time.Duration
	shutdownDelay         time.Duration
	logLevel              slog.Level
	cacheMaxCost          int64
	decisionCacheMaxBytes int64
	memoryLimit           int64
	decisionLog           string
	decisionSample        float64
	version               bool
}

// noEnv lists the flags without an environment variable: a PDP_VERSION set
// for other reasons must not turn the server into a version printer.
var noEnv = map[string]bool{"version": true}

// parseFlags reads the environment, then the command line.
func parseFlags(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("pdp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8181", "`ADDRESS` of the decision port (\":8181\" for every interface)")
	fs.StringVar(&c.adminAddr, "admin-addr", "127.0.0.1:9181", "`ADDRESS` of the admin port: health and metrics (\":9181\" for every interface)")
	fs.StringVar(&c.tlsCertFile, "tls-cert-file", "", "serve the decision port over TLS with the certificate (chain) in PEM `FILE`, reloaded when it changes")
	fs.StringVar(&c.tlsKeyFile, "tls-key-file", "", "private key in PEM `FILE` of --tls-cert-file, reloaded with it")
	fs.StringVar(&c.tlsClientCAFile, "tls-client-ca-file", "", "require client certificates on the decision port, signed by a CA in PEM `FILE`")
	fs.StringVar(&c.grpcAddr, "grpc-addr", "", "`ADDRESS` of the gRPC port serving Envoy's ext_authz check and gRPC health (off when empty)")
	fs.StringVar(&c.state, "state", "", "serve the YAML state `FILE`, reloaded when it changes")
	fs.StringVar(&c.redis, "redis", "", "read state from Redis at `URL`: redis://, rediss://, redis+sentinel://, redis+cluster:// (docs/redis.md)")
	fs.StringVar(&c.prefix, "prefix", "", "Redis key `PREFIX` (default "+redisstate.DefaultPrefix+", "+redisstate.DefaultClusterPrefix+" for a cluster)")
	fs.StringVar(&c.configFile, "config", "", "YAML `FILE` of routes, identity and proxy settings for /v1/authz")
	c.bodyLimit, c.batchBodyLimit = httpapi.DefaultBodyLimit, httpapi.DefaultBatchBodyLimit
	fs.Var(byteFlag[int]{&c.bodyLimit}, "body-limit", "largest request body in `BYTES` (413 above)")
	fs.Var(byteFlag[int]{&c.batchBodyLimit}, "batch-body-limit", "largest body of /v1/check/batch in `BYTES`")
	fs.IntVar(&c.maxDepth, "max-depth", httpapi.DefaultMaxDepth, "deepest nesting (`LEVELS`) of a JSON request body")
	fs.IntVar(&c.maxConns, "max-conns", httpapi.DefaultMaxConns, "most connections (`N`) each port serves at once; one more is answered 503")
	c.headerLimit = httpapi.DefaultHeaderLimit
	fs.Var(byteFlag[int]{&c.headerLimit}, "header-limit", "largest request line plus headers in `BYTES` (431 above)")
	fs.DurationVar(&c.readTimeout, "read-timeout", httpapi.DefaultReadTimeout, "time (`DURATION`) a client has to send a whole request")
	fs.DurationVar(&c.writeTimeout, "write-timeout", httpapi.DefaultWriteTimeout, "time (`DURATION`) a response may take to write")
	fs.DurationVar(&c.evalTimeout, "eval-timeout", httpapi.DefaultEvalTimeout, "time (`DURATION`) the decisions of one request may take (a check, a whole batch); past it they deny with evaluation_error")
	fs.DurationVar(&c.reloadInterval, "reload-interval", time.Second, "how often (`DURATION`) the state file is checked for changes")
	fs.DurationVar(&c.staleness, "staleness", redisstate.DefaultStaleness, "how long (`DURATION`) cached Redis facts are served while Redis is unreachable")
	fs.DurationVar(&c.shutdownDelay, "shutdown-delay", 0, "how long (`DURATION`) pdp keeps answering on SIGTERM or SIGINT, not ready, before it drains")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", httpapi.DefaultShutdownTimeout, "how long (`DURATION`) requests in flight may finish on SIGTERM or SIGINT")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error")
	c.cacheMaxCost = redisstate.DefaultCacheMaxCost
	fs.Var(byteFlag[int64]{&c.cacheMaxCost}, "cache-max-cost", "memory budget of the Redis facts cache in `BYTES`")
	c.decisionCacheMaxBytes = pdp.DefaultDecisionCacheMaxBytes
	fs.Var(byteFlag[int64]{&c.decisionCacheMaxBytes}, "decision-cache-max-bytes", "memory budget of the decision cache in `BYTES`; 0 turns it off")
	c.memoryLimit = memoryLimitAuto
	fs.Var(memoryLimit{&c.memoryLimit}, "memory-limit", "soft limit of the Go runtime's memory in `BYTES`, \"auto\" (with --redis: both cache budgets + 32Mi, unless GOMEMLIMIT is set) or \"off\"")
	fs.StringVar(&c.decisionLog, "decision-log", "stdout", "where decision log lines go (`DEST`): stdout, stderr, a file, or off")
	fs.Float64Var(&c.decisionSample, "decision-log-sample", defaultDecisionSample, "`FRACTION` of allows written to the decision log (denials always are)")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	fs.Usage = func() { usage(fs) }

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if noEnv[f.Name] {
			return
		}
		if v, ok := lookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		fmt.Fprintln(stderr, "pdp:", envErr)
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintln(stderr, "pdp:", err)
		return nil, err
	}
	if c.version {
		return c, nil
	}
	var err error
	switch {
	case c.state == "" && c.redis == "":
		err = errors.New("one of --state and --redis is required")
	case c.state != "" && c.redis != "":
		err = errors.New("--state and --redis exclude each other")
	case c.bodyLimit <= 0 || c.batchBodyLimit <= 0 || c.maxDepth <= 0:
		err = errors.New("--body-limit, --batch-body-limit and --max-depth must be positive")
	case c.shutdownDelay < 0:
		err = errors.New("--shutdown-delay must not be negative")
	case c.reloadInterval <= 0 || c.shutdownTimeout <= 0 || c.staleness <= 0 || c.evalTimeout <= 0:
		err = errors.New("--reload-interval, --staleness, --shutdown-timeout and --eval-timeout must be positive")
	case c.maxConns <= 0 || c.headerLimit <= 0 || c.readTimeout <= 0 || c.writeTimeout <= 0:
		err = errors.New("--max-conns, --header-limit, --read-timeout and --write-timeout must be positive")
	case (c.tlsCertFile == "") != (c.tlsKeyFile == ""):
		err = errors.New("--tls-cert-file and --tls-key-file go together")
	case c.tlsClientCAFile != "" && c.tlsCertFile == "":
		err = errors.New("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
	}
	if err != nil {
		fmt.Fprintf(stderr, "pdp: %v (pdp --help lists the flags)\n", err)
		return nil, err
	}
	return c, nil
}

// envName is the environment variable of a flag: PDP_ADMIN_ADDR for admin-addr.
func envName(flagName string) string {
	return "PDP_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: pdp (--state FILE | --redis URL) [flags]\n\n"+
		"The policy decision point. Every flag can also be set by the environment variable shown.\n\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, text := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		if !noEnv[f.Name] {
			fmt.Fprintf(w, "  [%s]", envName(f.Name))
		}
		fmt.Fprintf(w, "\n      %s", text)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
	fmt.Fprintf(w, "\nExit status: 0 after a clean shutdown, 1 when serving fails, 2 on bad usage.\n")
}

func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	c, err := parseFlags(args, lookupEnv, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		return exitUsage
	case c.version:
		fmt.Fprintf(stdout, "pdp %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: c.logLevel}))
	_, goMemLimitSet := lookupEnv("GOMEMLIMIT")
	_, goGCSet := lookupEnv("GOGC")
	limit, auto := applyMemoryLimit(c, goMemLimitSet)
	if gcPercent := applyGCPercent(auto, goGCSet); limit > 0 {
		log.Info("memory limit", "bytes", limit, "gc_percent", gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, c, log, stdout, stderr); err != nil {
		log.Error("pdp failed", "error", err.Error())
		return exitFail
	}
	log.Info("pdp stopped")
	return exitOK
}

// stateSource is what serve needs of a state source beyond pdp.Facts.
type stateSource struct {
	facts pdp.Facts
	ready func() error
	stats func() metrics.StateStats
}

// openState opens the state source the flags name and starts what keeps it
// current (the file watcher or the stream tailer) until ctx ends. The
// returned func releases it.
func openState(ctx context.Context, c *config, log *slog.Logger, m *metrics.Registry) (stateSource, func(), error) {
	if c.redis != "" {
		redis.SetLogger(redisLog{log.With("component", "redis")})
		src, err := redisstate.Open(ctx, c.redis, redisstate.Options{Prefix: c.prefix, Staleness: c.staleness,
			CacheMaxCost: c.cacheMaxCost, Logger: log, RoundTrip: m.RedisCommand})
		if err != nil {
			return stateSource{}, nil, fmt.Errorf("redis: %w", err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := src.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("redis change stream stopped", "error", err.Error())
			}
		}()
		release := func() {
			if err := src.Close(); err != nil {
				log.Warn("closing redis", "error", err.Error())
			}
			<-done
		}
		return stateSource{src, src.Ready, redisStats(src)}, release, nil
	}
	src, warnings, err := statefile.Open(c.state, statefile.WithLogger(log))
	if err != nil {
		return stateSource{}, nil, err
	}
	for _, w := range warnings {
		log.Warn("state file", "path", c.state, "warning", w.String())
	}
	done := make(chan struct{})
	go func() { defer close(done); src.Watch(ctx, c.reloadInterval) }()
	fileStats := func() metrics.StateStats { return metrics.StateStats{Up: true} }
	return stateSource{src, src.Ready, fileStats}, func() { <-done }, nil
}

// serve runs the decision point until ctx ends.
func serve(ctx context.Context, c *config, log *slog.Logger, stdout, stderr io.Writer) error {
	// Refuse a bad route table at startup rather than at the first
	// forward-auth request. Without --config, /v1/authz has no routes and
	// denies everything.
	authzCfg, err := forwardauth.ParseConfig(nil)
	if c.configFile != "" {
		authzCfg, err = forwardauth.LoadConfig(c.configFile)
	}
	if err != nil {
		return err
	}
	// Stop the watcher or tailer before releasing it, whichever way serve ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	decisions, logFile, closeLog, err := openDecisionLog(c.decisionLog, c.decisionSample, stdout, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	go reopenOnHangup(ctx, logFile, log)
	reg := metrics.New(metrics.Build{Version: version}, policy.Revision())
	src, release, err := openState(ctx, c, log, reg)
	if err != nil {
		return err
	}
	defer func() { cancel(); release() }()
	reg.MustRegister(metrics.NewStateCollector(src.stats))
	if decisions != nil {
		reg.MustRegister(metrics.NewDecisionLogCollector(decisions.Dropped))
	}

	engine, err := pdp.NewEngine(src.facts, pdp.WithDecisionCacheObserver(reg.DecisionCache),
		pdp.WithDecisionCacheMaxBytes(c.decisionCacheMaxBytes))
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	forwardAuth, err := forwardauth.New(authzCfg, engine, src.facts)
	if err != nil {
		return fmt.Errorf("forward auth: %w", err)
	}
	defer forwardAuth.Close()
	if forwardAuth.KeyStats().Remote {
		reg.MustRegister(metrics.NewJWKSCollector(func() metrics.JWKSStats { return jwksStats(forwardAuth.KeyStats()) }))
	}
	obs := &observer{metrics: reg, log: decisions}
	srv, err := httpapi.New(engine, httpapi.Options{
		Authz:           forwardAuth,
		BodyLimit:       c.bodyLimit,
		BatchBodyLimit:  c.batchBodyLimit,
		MaxDepth:        c.maxDepth,
		MaxConns:        c.maxConns,
		HeaderLimit:     c.headerLimit,
		ReadTimeout:     c.readTimeout,
		WriteTimeout:    c.writeTimeout,
		EvalTimeout:     c.evalTimeout,
		Ready:           src.ready, // the policy compiled above
		ShutdownTimeout: c.shutdownTimeout,
		ShutdownDelay:   c.shutdownDelay,
		Logger:          log,
		Observer:        obs,
		Metrics:         fasthttpadaptor.NewFastHTTPHandler(reg.Handler()),
	})
	if err != nil {
		return err
	}
	tlsCfg, err := tlsConfig(c, log)
	if err != nil {
		return err
	}
	dl, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("decision port: %w", err)
	}
	if tlsCfg != nil {
		dl = tls.NewListener(dl, tlsCfg)
	}
	al, err := net.Listen("tcp", c.adminAddr)
	if err != nil {
		dl.Close()
		return fmt.Errorf("admin port: %w", err)
	}
	var gl net.Listener
	if c.grpcAddr != "" {
		if gl, err = net.Listen("tcp", c.grpcAddr); err != nil {
			dl.Close()
			al.Close()
			return fmt.Errorf("grpc port: %w", err)
		}
	}
	log.Info("pdp serving", "version", version, "addr", dl.Addr().String(), "tls", tlsCfg != nil,
		"client_certificates", tlsCfg != nil && tlsCfg.ClientCAs != nil, "admin_addr", al.Addr().String(),
		"grpc_addr", addrString(gl), "policy_revision", engine.PolicyRevision(), "state_revision", src.facts.Revision())
	if gl == nil {
		return srv.Serve(ctx, dl, al)
	}
	gs, err := extauthz.New(forwardAuth, extauthz.Options{Observer: obs, Ready: src.ready,
		ShutdownTimeout: c.shutdownTimeout, ShutdownDelay: c.shutdownDelay, Logger: log,
		// A CheckRequest carries the original request's headers: twice
		// the HTTP header limit leaves room for its framing.
		MaxMessageBytes: 2 * c.headerLimit, MaxConns: c.maxConns, EvalTimeout: c.evalTimeout})
	if err != nil {
		return err
	}
	// Either server stopping stops the other.
	ctx, stopBoth := context.WithCancel(ctx)
	defer stopBoth()
	grpcErr := make(chan error, 1)
	go func() { grpcErr <- gs.Serve(ctx, gl); stopBoth() }()
	httpErr := srv.Serve(ctx, dl, al)
	stopBoth()
	return errors.Join(httpErr, <-grpcErr)
}

// addrString is a listener's address, "" for none.
func addrString(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}
