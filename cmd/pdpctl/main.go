// Command pdpctl writes the decision point's state into Redis the way
// docs/redis.md says (each write atomic with its change-stream entry) and asks a
// running pdp for decisions (docs/api.md, "pdpctl").
//
//	pdpctl import FILE.yaml            validate, then write every document, one stream entry each
//	pdpctl export                      the whole state as the YAML state file, to stdout
//	pdpctl user suspend ID --reason TEXT
//	pdpctl user unsuspend ID (--reason TEXT | --all)
//	pdpctl user block|unblock|archive|unarchive ID
//	pdpctl user set-role ID ROLE
//	pdpctl delegate account OWNER DELEGATE     pdpctl undelegate account OWNER DELEGATE
//	pdpctl delegate infra INFRA USER           pdpctl undelegate infra INFRA USER
//	pdpctl apikey add USER KEY                 pdpctl apikey revoke KEY
//	pdpctl check [--pdp URL] PRINCIPAL ACTION KIND[/ID] [--attr k=v ...] [--field F ...] [--acting-as T] [--explain]
//
// --redis URL (PDP_REDIS, default redis://127.0.0.1:6379) and --prefix
// (PDP_PREFIX) go before or after the verb; check's --pdp URL is PDP_PDP
// (default http://127.0.0.1:8181). Flags and arguments may be mixed.
//
// import reads "-" as stdin and prints the validation warnings (references to
// entities that do not exist, roles the policy finds invalid) on stderr; they
// do not stop the import. A file without a global section leaves the stored
// global document alone. export writes API keys as SHA-256 digests. A KEY
// argument of "-" is read from stdin's first line, keeping it out of the
// process list. An edit that changes nothing (already blocked, ...) says so
// on stderr and succeeds.
//
// check's PRINCIPAL is a user id, an email (it holds "@"), or an API key
// written key:KEY; id:ID and email:EMAIL are accepted too. --attr values are
// JSON when they parse as JSON (2, true, ["a"], {"servers":2}), strings
// otherwise; a dotted name (requested.servers=2) builds nested objects. The
// answer is printed as JSON.
//
// Exit status: 0 on success (check: allowed), 1 when check is denied, 2 on
// bad usage or input (a malformed file, an entity that does not exist, a
// request the pdp rejects) with the reason on stderr, 3 when Redis or the pdp
// cannot be reached or fails.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
