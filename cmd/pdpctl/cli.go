package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/sync/redisstate"
)

// Exit statuses.
const (
	exitOK          = 0
	exitDenied      = 1
	exitUsage       = 2
	exitUnavailable = 3
)

// connectTimeout bounds how long pdpctl waits for Redis to answer at first.
const connectTimeout = 10 * time.Second

const usageText = `usage:
  pdpctl import FILE.yaml
  pdpctl export
  pdpctl user suspend ID --reason TEXT
  pdpctl user unsuspend ID (--reason TEXT | --all)
  pdpctl user block|unblock|archive|unarchive ID
  pdpctl user set-role ID ROLE
  pdpctl delegate|undelegate account OWNER DELEGATE
  pdpctl delegate|undelegate infra INFRA USER
  pdpctl apikey add USER KEY
  pdpctl apikey revoke KEY
  pdpctl check [--pdp URL] PRINCIPAL ACTION KIND[/ID] [--attr k=v ...] [--field F ...] [--acting-as T] [--explain]

flags of every command:
  --redis URL    Redis URL (PDP_REDIS; default redis://127.0.0.1:6379):
                 redis://, rediss://, redis+sentinel://h:p,h:p/master, redis+cluster://h:p,h:p
  --prefix P     Redis key prefix (PDP_PREFIX; default pdp:, {pdp}: for a cluster)

exit status: 0 success or allowed, 1 denied, 2 bad usage or input, 3 Redis or pdp unreachable
`

// usageError is bad usage or input: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errDenied is check's answer "denied": exit status 1, nothing on stderr.
var errDenied = errors.New("denied")

// cli is one invocation.
type cli struct {
	env            func(string) (string, bool)
	stdin          io.Reader
	stdout, stderr io.Writer
	redis, prefix  string
}

// run executes one command line and returns its exit status.
func run(ctx context.Context, args []string, env func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{env: env, stdin: stdin, stdout: stdout, stderr: stderr, redis: "redis://127.0.0.1:6379"}
	err := c.dispatch(ctx, args)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errDenied):
		return exitDenied
	}
	fmt.Fprintln(stderr, "pdpctl:", err)
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, redisstate.ErrNotFound) || errors.Is(err, redisstate.ErrInvalid) {
		return exitUsage
	}
	return exitUnavailable
}

// flags returns a flag set with the flags of every command.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.redis, "redis", c.redis, "Redis `URL`")
	fs.StringVar(&c.prefix, "prefix", c.prefix, "Redis key `PREFIX`")
	return fs
}

// common names the flags of every command, read from the environment once,
// before the command line.
var common = map[string]bool{"redis": true, "prefix": true}

// applyEnv sets fs's flags from their PDP_<FLAG> environment variables,
// except the common ones unless withCommon.
func (c *cli) applyEnv(fs *flag.FlagSet, withCommon bool) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if common[f.Name] && !withCommon {
			return
		}
		name := "PDP_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := c.env(name); ok && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = usagef("%s=%q: %w", name, v, err)
			}
		}
	})
	return envErr
}

// parse applies the environment variables of fs's own flags, then parses
// args, allowing flags between the positional arguments, and checks their
// count.
func (c *cli) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	if err := c.applyEnv(fs, false); err != nil {
		return nil, err
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(c.stdout, usageText)
				return nil, err
			}
			return nil, usagef("%s: %w (pdpctl --help lists the commands)", fs.Name(), err)
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < minArgs || len(pos) > maxArgs {
		return nil, usagef("%s: wrong number of arguments (pdpctl --help lists the commands)", fs.Name())
	}
	return pos, nil
}

// dispatch runs the command named by args.
func (c *cli) dispatch(ctx context.Context, args []string) error {
	fs := c.flags("pdpctl")
	if err := c.applyEnv(fs, true); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, usageText)
			return err
		}
		return usagef("%w (pdpctl --help lists the commands)", err)
	}
	args = fs.Args()
	if len(args) == 0 {
		return usagef("no command given (pdpctl --help lists the commands)")
	}
	verb, args := args[0], args[1:]
	switch verb {
	case "import":
		return c.importFile(ctx, args)
	case "export":
		return c.export(ctx, args)
	case "user":
		return c.user(ctx, args)
	case "delegate", "undelegate":
		return c.delegate(ctx, verb, args)
	case "apikey":
		return c.apikey(ctx, args)
	case "check":
		return c.check(ctx, args)
	case "help":
		fmt.Fprint(c.stdout, usageText)
		return nil
	}
	return usagef("unknown command %q (pdpctl --help lists the commands)", verb)
}

// sub splits a command with a sub-command ("user block ID") into the
// sub-command and the rest, checking it is one of allowed.
func sub(cmd string, args []string, allowed ...string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", nil, usagef("%s: missing sub-command (one of %s)", cmd, strings.Join(allowed, ", "))
	}
	for _, a := range allowed {
		if args[0] == a {
			return a, args[1:], nil
		}
	}
	return "", nil, usagef("%s: unknown sub-command %q (one of %s)", cmd, args[0], strings.Join(allowed, ", "))
}

// writer connects to Redis.
func (c *cli) writer(ctx context.Context) (*redisstate.Writer, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	w, err := redisstate.OpenWriter(ctx, c.redis, c.prefix)
	if err != nil && !errors.Is(err, pdp.ErrUnavailable) {
		return nil, usageError{err} // a bad URL or prefix
	}
	return w, err
}

// edited reports an edit's outcome: a note when nothing changed.
func (c *cli) edited(changed bool, err error) error {
	if err == nil && !changed {
		fmt.Fprintln(c.stderr, "pdpctl: nothing changed (already so)")
	}
	return err
}

// secret returns arg, or the first line of stdin when arg is "-".
func (c *cli) secret(arg string) (string, error) {
	if arg != "-" {
		return arg, nil
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef("no key on stdin")
	}
	return line, nil
}
