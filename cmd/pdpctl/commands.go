package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/metalsoft-io/pdp/sync/statefile"
)

// importFile validates a state file and writes it into Redis.
func (c *cli) importFile(ctx context.Context, args []string) error {
	fs := c.flags("import")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	var data []byte
	if pos[0] == "-" {
		data, err = io.ReadAll(c.stdin)
	} else {
		data, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return usageError{err}
	}
	st, warnings, err := statefile.Load(data)
	if err != nil {
		return usagef("%s: %w", pos[0], err)
	}
	for _, w := range warnings {
		fmt.Fprintf(c.stderr, "pdpctl: warning: %s: %s\n", pos[0], w)
	}
	w, err := c.writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	n, err := w.Import(ctx, st)
	if err != nil {
		return err
	}
	var top map[string]any
	if yaml.Unmarshal(data, &top) == nil {
		if _, ok := top["global"]; ok {
			if err := w.SetGlobal(ctx, &st.Global); err != nil {
				return err
			}
			n++
		}
	}
	fmt.Fprintf(c.stdout, "imported %s: %d changes\n", pos[0], n)
	return nil
}

// export writes the state in Redis as a YAML state file to stdout.
func (c *cli) export(ctx context.Context, args []string) error {
	if _, err := c.parse(c.flags("export"), args, 0, 0); err != nil {
		return err
	}
	w, err := c.writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	st, err := w.Export(ctx)
	if err != nil {
		return err
	}
	enc := yaml.NewEncoder(c.stdout)
	enc.SetIndent(2)
	if err := enc.Encode(st); err != nil {
		return err
	}
	return enc.Close()
}

// user edits a user.
func (c *cli) user(ctx context.Context, args []string) error {
	verb, args, err := sub("user", args, "suspend", "unsuspend", "block", "unblock", "archive", "unarchive", "set-role")
	if err != nil {
		return err
	}
	fs := c.flags("user " + verb)
	var reason string
	var all bool
	nargs := 1
	switch verb {
	case "suspend":
		fs.StringVar(&reason, "reason", "", "suspend reason `TEXT`")
	case "unsuspend":
		fs.StringVar(&reason, "reason", "", "the suspend reason `TEXT` to remove")
		fs.BoolVar(&all, "all", false, "remove every suspend reason")
	case "set-role":
		nargs = 2
	}
	pos, err := c.parse(fs, args, nargs, nargs)
	if err != nil {
		return err
	}
	switch {
	case verb == "suspend" && reason == "":
		return usagef("user suspend: --reason is required")
	case verb == "unsuspend" && (reason == "") == !all:
		return usagef("user unsuspend: give exactly one of --reason and --all")
	}
	w, err := c.writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	id := pos[0]
	switch verb {
	case "suspend":
		return c.edited(w.SuspendUser(ctx, id, reason))
	case "unsuspend":
		return c.edited(w.UnsuspendUser(ctx, id, reason, all))
	case "block", "unblock":
		return c.edited(w.SetBlocked(ctx, id, verb == "block"))
	case "archive", "unarchive":
		return c.edited(w.SetArchived(ctx, id, verb == "archive"))
	default: // set-role
		return c.edited(w.SetRole(ctx, id, pos[1]))
	}
}

// delegate adds or removes an account or infrastructure delegation.
func (c *cli) delegate(ctx context.Context, verb string, args []string) error {
	what, args, err := sub(verb, args, "account", "infra")
	if err != nil {
		return err
	}
	pos, err := c.parse(c.flags(verb+" "+what), args, 2, 2)
	if err != nil {
		return err
	}
	w, err := c.writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	switch {
	case verb == "delegate" && what == "account":
		return c.edited(w.DelegateAccount(ctx, pos[0], pos[1]))
	case verb == "delegate":
		return c.edited(w.DelegateInfra(ctx, pos[0], pos[1]))
	case what == "account":
		return c.edited(w.UndelegateAccount(ctx, pos[0], pos[1]))
	default:
		return c.edited(w.UndelegateInfra(ctx, pos[0], pos[1]))
	}
}

// apikey adds or revokes an API key.
func (c *cli) apikey(ctx context.Context, args []string) error {
	verb, args, err := sub("apikey", args, "add", "revoke")
	if err != nil {
		return err
	}
	n := 1
	if verb == "add" {
		n = 2
	}
	pos, err := c.parse(c.flags("apikey "+verb), args, n, n)
	if err != nil {
		return err
	}
	key, err := c.secret(pos[n-1])
	if err != nil {
		return err
	}
	w, err := c.writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	if verb == "add" {
		return c.edited(w.AddAPIKey(ctx, pos[0], key))
	}
	return w.RevokeAPIKey(ctx, key)
}
