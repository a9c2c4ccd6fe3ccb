// Command pdp is the policy decision point: it serves decisions over HTTP
// (../../../shared/spec/API.md) on facts read from a YAML state file
// (--state, reloaded when it changes) or from Redis (--redis).
//
// Every flag can also be set by an environment variable PDP_<FLAG>
// (--admin-addr is PDP_ADMIN_ADDR); a flag on the command line wins over its
// variable. `pdp --help` lists them. --version has no variable: a
// PDP_VERSION set for another purpose must not change what pdp does.
// Exactly one of --state and --redis is required.
//
// On SIGTERM or SIGINT pdp stops accepting connections, closes idle
// keep-alive ones, lets requests in flight finish for at most
// --shutdown-timeout, stops the state file watcher or the Redis change
// stream tailer, and exits.
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
	"github.com/metalsoft-io/pdp/pdp/authz"
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
	logLevel              slog.Level
	cacheMaxCost          int64
	decisionCacheMaxBytes int64
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
	fs.StringVar(&c.state, "state", "", "serve the YAML state `FILE`, reloaded when it changes")
	fs.StringVar(&c.redis, "redis", "", "read state from Redis at `URL`: redis://, rediss://, redis+sentinel://, redis+cluster:// (docs/redis.md)")
	fs.StringVar(&c.prefix, "prefix", "", "Redis key `PREFIX` (default "+redisstate.DefaultPrefix+", "+redisstate.DefaultClusterPrefix+" for a cluster)")
	fs.StringVar(&c.configFile, "config", "", "YAML `FILE` of routes, identity and proxy settings for /v1/authz")
	fs.IntVar(&c.bodyLimit, "body-limit", httpapi.DefaultBodyLimit, "largest request body in `BYTES` (413 above)")
	fs.IntVar(&c.batchBodyLimit, "batch-body-limit", httpapi.DefaultBatchBodyLimit, "largest body of /v1/check/batch in `BYTES`")
	fs.IntVar(&c.maxDepth, "max-depth", httpapi.DefaultMaxDepth, "deepest nesting (`LEVELS`) of a JSON request body")
	fs.IntVar(&c.maxConns, "max-conns", httpapi.DefaultMaxConns, "most connections (`N`) each port serves at once; one more is answered 503")
	fs.IntVar(&c.headerLimit, "header-limit", httpapi.DefaultHeaderLimit, "largest request line plus headers in `BYTES` (431 above)")
	fs.DurationVar(&c.readTimeout, "read-timeout", httpapi.DefaultReadTimeout, "time (`DURATION`) a client has to send a whole request")
	fs.DurationVar(&c.writeTimeout, "write-timeout", httpapi.DefaultWriteTimeout, "time (`DURATION`) a response may take to write")
	fs.DurationVar(&c.evalTimeout, "eval-timeout", httpapi.DefaultEvalTimeout, "time (`DURATION`) the decisions of one request may take (a check, a whole batch); past it they deny with evaluation_error")
	fs.DurationVar(&c.reloadInterval, "reload-interval", time.Second, "how often (`DURATION`) the state file is checked for changes")
	fs.DurationVar(&c.staleness, "staleness", redisstate.DefaultStaleness, "how long (`DURATION`) cached Redis facts are served while Redis is unreachable")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", httpapi.DefaultShutdownTimeout, "how long (`DURATION`) requests in flight may finish on SIGTERM or SIGINT")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error")
	fs.Int64Var(&c.cacheMaxCost, "cache-max-cost", redisstate.DefaultCacheMaxCost, "memory budget of the Redis facts cache in `BYTES`")
	fs.Int64Var(&c.decisionCacheMaxBytes, "decision-cache-max-bytes", pdp.DefaultDecisionCacheMaxBytes, "memory budget of the decision cache in `BYTES`; 0 turns it off")
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
	case c.reloadInterval <= 0 || c.shutdownTimeout <= 0 || c.staleness <= 0 || c.evalTimeout <= 0:
		err = errors.New("--reload-interval, --staleness, --shutdown-timeout and --eval-timeout must be positive")
	case c.maxConns <= 0 || c.headerLimit <= 0 || c.readTimeout <= 0 || c.writeTimeout <= 0:
		err = errors.New("--max-conns, --header-limit, --read-timeout and --write-timeout must be positive")
	case (c.tlsCertFile == "") != (c.tlsKeyFile == ""):
		err = errors.New("--tls-cert-file and --tls-key-file go together")
	case c.tlsClientCAFile != "" && c.tlsCertFile == "":
		err = errors.New("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
	case c.decisionCacheMaxBytes < 0:
		err = errors.New("--decision-cache-max-bytes must not be negative")
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
	authzCfg, err := authz.ParseConfig(nil)
	if c.configFile != "" {
		authzCfg, err = authz.LoadConfig(c.configFile)
	}
	if err != nil {
		return err
	}
	// Stop the watcher or tailer before releasing it, whichever way serve ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	decisions, closeLog, err := openDecisionLog(c.decisionLog, c.decisionSample, stdout, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
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
	forwardAuth, err := authz.New(authzCfg, engine, src.facts)
	if err != nil {
		return fmt.Errorf("forward auth: %w", err)
	}
	lister, _ := src.facts.(pdp.InfrastructureLister) // lookups need it
	srv, err := httpapi.New(engine, httpapi.Options{
		Authz:           forwardAuth,
		Infrastructures: lister,
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
		Logger:          log,
		Observer:        &observer{metrics: reg, log: decisions},
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
	log.Info("pdp serving", "version", version, "addr", dl.Addr().String(), "tls", tlsCfg != nil,
		"client_certificates", tlsCfg != nil && tlsCfg.ClientCAs != nil, "admin_addr", al.Addr().String(),
		"policy_revision", engine.PolicyRevision(), "state_revision", src.facts.Revision())
	return srv.Serve(ctx, dl, al)
}
