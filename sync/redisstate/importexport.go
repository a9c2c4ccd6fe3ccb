package redisstate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/metalsoft-io/pdp/pdp"
)

// importChunk is how many entities one import transaction writes.
const importChunk = 256

// Import writes every document of s, each with one stream entry, and the
// email and API key indexes. Entities already stored are replaced; entities
// not in s are left alone. A zero global document is not written (a state
// without one keeps the stored one; SetGlobal writes it explicitly). Each
// chunk of entities is one MULTI/EXEC. It returns the number of stream
// entries written.
func (w *Writer) Import(ctx context.Context, s *pdp.State) (int, error) {
	if err := validateState(s); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var docs []change
	add := func(kind, id string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("%s %q: %w", kind, id, err)
		}
		docs = append(docs, change{kind: kind, id: id, val: b})
		return nil
	}
	var err error
	for i := range s.Accounts {
		err = errors.Join(err, add(KindAccount, s.Accounts[i].ID, &s.Accounts[i]))
	}
	for i := range s.Roles {
		err = errors.Join(err, add(KindRole, s.Roles[i].Name, &s.Roles[i]))
	}
	for i := range s.Users {
		err = errors.Join(err, add(KindUser, s.Users[i].ID, &s.Users[i]))
	}
	for i := range s.Infrastructures {
		err = errors.Join(err, add(KindInfra, s.Infrastructures[i].ID, &s.Infrastructures[i]))
	}
	for i := range s.Resources {
		r := &s.Resources[i]
		err = errors.Join(err, add(KindResource, r.Kind+":"+r.ID, r))
	}
	for _, k := range s.APIKeys {
		docs = append(docs, change{kind: KindAPIKey, id: k.Digest(), val: []byte(k.User)})
	}
	if !isZeroGlobal(&s.Global) {
		err = errors.Join(err, add(KindGlobal, "", &s.Global))
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	written := 0
	for chunk := range slices.Chunk(docs, importChunk) {
		n, err := w.importChunk(ctx, chunk)
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// isZeroGlobal reports whether g is the zero global document.
func isZeroGlobal(g *pdp.Global) bool {
	return !g.Maintenance && !g.AdminMaintenance && len(g.Limits) == 0
}

// SetGlobal writes the global document, with its stream entry.
func (w *Writer) SetGlobal(ctx context.Context, g *pdp.Global) error {
	b, err := json.Marshal(g)
	if err != nil {
		return err
	}
	_, err = w.importChunk(ctx, []change{{kind: KindGlobal, val: b}})
	return err
}

// importChunk writes docs in one transaction, keeping the email index of
// the users among them current.
func (w *Writer) importChunk(ctx context.Context, docs []change) (int, error) {
	watch := make([]string, len(docs))
	var userKeys []string
	for i, d := range docs {
		watch[i] = w.keys.of(d.kind, d.id)
		if d.kind == KindUser {
			userKeys = append(userKeys, watch[i])
		}
	}
	written := 0
	err := w.commit(ctx, watch, func(tx *redis.Tx) ([]change, error) {
		oldEmails := map[string]string{}
		if len(userKeys) > 0 {
			vals, err := tx.MGet(ctx, userKeys...).Result()
			if err != nil {
				return nil, err
			}
			for _, v := range vals {
				var u struct {
					ID    string `json:"id"`
					Email string `json:"email"`
				}
				if s, ok := v.(string); ok && json.Unmarshal([]byte(s), &u) == nil {
					oldEmails[u.ID] = u.Email
				}
			}
		}
		var out []change
		for _, d := range docs {
			if d.kind != KindUser {
				out = append(out, d)
				continue
			}
			var u pdp.User
			if err := json.Unmarshal(d.val, &u); err != nil {
				return nil, err
			}
			uc, err := userChanges(&u, oldEmails[u.ID])
			if err != nil {
				return nil, err
			}
			out = append(out, uc...)
		}
		written = 0
		for _, c := range out {
			if !c.quiet {
				written++
			}
		}
		return out, nil
	})
	if err != nil {
		return 0, err
	}
	return written, nil
}

// validateState checks what statefile.Parse checks of a state that may not
// come from a file: required fields, built-in role names, API key form.
func validateState(s *pdp.State) error {
	for i, a := range s.Accounts {
		if a.ID == "" {
			return fmt.Errorf("accounts[%d]: missing required field \"id\"", i)
		}
	}
	for i, u := range s.Users {
		if u.ID == "" {
			return fmt.Errorf("users[%d]: missing required field \"id\"", i)
		}
	}
	for i, r := range s.Roles {
		if r.Name == "" {
			return fmt.Errorf("roles[%d]: missing required field \"name\"", i)
		}
		if pdp.IsBuiltinRole(r.Name) {
			return fmt.Errorf("roles[%d]: %q is a built-in role and cannot be defined", i, r.Name)
		}
	}
	for i, in := range s.Infrastructures {
		if in.ID == "" || in.Owner == "" {
			return fmt.Errorf("infrastructures[%d]: \"id\" and \"owner\" are required", i)
		}
	}
	for i, r := range s.Resources {
		if r.Kind == "" || r.ID == "" {
			return fmt.Errorf("resources[%d]: \"kind\" and \"id\" are required", i)
		}
	}
	for i, k := range s.APIKeys {
		if k.User == "" || (k.Key == "") == (k.SHA256 == "") {
			return fmt.Errorf("api_keys[%d]: \"user\" and exactly one of \"key\" and \"sha256\" are required", i)
		}
	}
	return nil
}

// exportBatch is how many keys one export round trip reads.
const exportBatch = 500

// Export reads the whole state. API keys come out as SHA-256 digests (the
// clear keys are never stored); the email index is derived from the users
// and not exported. A malformed document is an error naming its key.
func (w *Writer) Export(ctx context.Context) (*pdp.State, error) {
	all, err := w.scan(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	s := &pdp.State{}
	for batch := range slices.Chunk(all, exportBatch) {
		cmds := make([]*redis.StringCmd, len(batch))
		_, err := w.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range batch {
				cmds[i] = p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, unavailable(err)
		}
		for i, k := range batch {
			raw, err := cmds[i].Bytes()
			if errors.Is(err, redis.Nil) {
				continue // deleted since the scan
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if err := w.addExported(s, strings.TrimPrefix(k, w.keys.prefix), raw); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	sortState(s)
	return s, nil
}

// addExported decodes the document of a key (without prefix) into s.
// Keys of no known kind are skipped.
func (w *Writer) addExported(s *pdp.State, name string, raw []byte) error {
	kind, id, _ := strings.Cut(name, ":")
	switch kind {
	case KindUser, KindAccount, KindRole, KindInfra, KindResource, KindAPIKey, KindGlobal:
	default:
		return nil
	}
	v, err := decodeDoc(kind, id, string(raw))
	if err != nil {
		return err
	}
	switch d := v.(type) {
	case *pdp.User:
		s.Users = append(s.Users, *d)
	case *pdp.Account:
		s.Accounts = append(s.Accounts, *d)
	case *pdp.Role:
		for i := range d.Rules {
			d.Rules[i].Conditions = plainNumbers(d.Rules[i].Conditions).(map[string]any)
		}
		s.Roles = append(s.Roles, *d)
	case *pdp.Infrastructure:
		d.Attr = plainNumbers(d.Attr).(map[string]any)
		s.Infrastructures = append(s.Infrastructures, *d)
	case *pdp.Resource:
		d.Attr = plainNumbers(d.Attr).(map[string]any)
		s.Resources = append(s.Resources, *d)
	case *pdp.Global:
		s.Global = *d
	case string:
		s.APIKeys = append(s.APIKeys, pdp.APIKey{SHA256: id, User: d})
	}
	return nil
}

// plainNumbers replaces the json.Numbers in a decoded value by int64 (or
// float64 when not an integer), so that the value encodes to YAML as a
// number, as the state file has it.
func plainNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case map[string]any:
		for k, e := range x {
			x[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plainNumbers(e)
		}
	}
	return v
}

// scan lists every key under the prefix but the stream.
func (w *Writer) scan(ctx context.Context) ([]string, error) {
	keys, err := scanKeys(ctx, w.client, globEscape(w.keys.prefix)+"*")
	return slices.DeleteFunc(keys, func(k string) bool { return k == w.keys.stream() }), err
}

// scanKeys lists the keys matching a SCAN pattern, on every master in
// Cluster mode.
func scanKeys(ctx context.Context, client redis.UniversalClient, match string) ([]string, error) {
	var (
		mu  sync.Mutex
		out []string
	)
	scanOne := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, match, 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			out = append(out, it.Val())
			mu.Unlock()
		}
		return it.Err()
	}
	if cc, ok := client.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scanOne(ctx, c) })
		return out, err
	}
	return out, scanOne(ctx, client)
}

// globEscape escapes the glob characters of a SCAN pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sortState orders every list by its identifying fields, for stable output.
func sortState(s *pdp.State) {
	slices.SortFunc(s.Accounts, func(a, b pdp.Account) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Users, func(a, b pdp.User) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Roles, func(a, b pdp.Role) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Infrastructures, func(a, b pdp.Infrastructure) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Resources, func(a, b pdp.Resource) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
	})
	slices.SortFunc(s.APIKeys, func(a, b pdp.APIKey) int { return cmp.Compare(a.SHA256, b.SHA256) })
}
