package redisstate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metalsoft-io/pdp/pdp"
)

// Errors of Writer for bad input; both mean nothing was written.
var (
	// ErrNotFound is returned for an edit of an entity that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid is returned for a document or an edit that cannot be stored.
	ErrInvalid = errors.New("invalid")
)

// maxTxAttempts bounds the retries of an optimistic transaction that lost a
// race with another writer.
const maxTxAttempts = 50

// Writer writes state into Redis the way docs/redis.md says: every change of a
// key goes with its stream entry in one MULTI/EXEC, guarded by WATCH on the
// keys it read. It is safe for concurrent use.
type Writer struct {
	client redis.UniversalClient
	keys   keys
}

// OpenWriter connects to Redis at url (the forms of Open) with the given key
// prefix ("" for the default) and checks that it answers.
func OpenWriter(ctx context.Context, url, prefix string) (*Writer, error) {
	// No automatic retries: a MULTI/EXEC retried on a new connection would
	// run without the WATCH of the old one. A failed write is reported.
	client, cluster, err := newClient(url, true)
	if err != nil {
		return nil, err
	}
	if prefix, err = resolvePrefix(prefix, cluster); err != nil {
		client.Close()
		return nil, err
	}
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, unavailable(err)
	}
	return &Writer{client: client, keys: keys{prefix}}, nil
}

// Close releases the connection.
func (w *Writer) Close() error { return w.client.Close() }

// change is one planned write: a SET (or a DEL when del) of the key of
// kind/id, with a stream entry unless quiet.
type change struct {
	kind, id string
	val      []byte
	del      bool
	quiet    bool // the value is known to be unchanged: no stream entry
}

// commit runs plan under WATCH watch and writes what it returns in one
// MULTI/EXEC, retrying when a watched key changed meanwhile.
func (w *Writer) commit(ctx context.Context, watch []string, plan func(tx *redis.Tx) ([]change, error)) error {
	for range maxTxAttempts {
		err := w.client.Watch(ctx, func(tx *redis.Tx) error {
			changes, err := plan(tx)
			if err != nil || len(changes) == 0 {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				w.queue(ctx, p, changes)
				return nil
			})
			return err
		}, watch...)
		if !errors.Is(err, redis.TxFailedErr) {
			return w.wrap(err)
		}
	}
	return fmt.Errorf("gave up after %d attempts: the keys kept changing", maxTxAttempts)
}

// wrap marks Redis failures as unavailability, leaving input errors alone.
func (w *Writer) wrap(err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
		return err
	}
	return unavailable(err)
}

// queue adds changes to p: each key's SET or DEL, and its stream entry with
// the time it was written (at, in Unix microseconds of this clock; see
// entryTime).
func (w *Writer) queue(ctx context.Context, p redis.Pipeliner, changes []change) {
	at := strconv.FormatInt(time.Now().UnixMicro(), 10)
	for _, c := range changes {
		key := w.keys.of(c.kind, c.id)
		if c.del {
			p.Del(ctx, key)
		} else {
			p.Set(ctx, key, c.val, 0)
		}
		if c.quiet {
			continue
		}
		p.XAdd(ctx, &redis.XAddArgs{
			Stream: w.keys.stream(),
			MaxLen: streamMaxLen,
			Approx: true,
			Values: []any{"kind", c.kind, "id", c.id, "at", at},
		})
	}
}

// userChanges plans the write of u over oldEmail (the email of the stored
// document, "" if none): the document and the email index.
func userChanges(u *pdp.User, oldEmail string) ([]change, error) {
	b, err := json.Marshal(u)
	if err != nil {
		return nil, err
	}
	out := []change{{kind: KindUser, id: u.ID, val: b}}
	oldEmail, newEmail := pdp.FoldEmail(oldEmail), pdp.FoldEmail(u.Email)
	if oldEmail != "" && oldEmail != newEmail {
		out = append(out, change{kind: KindEmail, id: oldEmail, del: true})
	}
	if newEmail != "" {
		out = append(out, change{kind: KindEmail, id: newEmail, val: []byte(u.ID), quiet: oldEmail == newEmail})
	}
	return out, nil
}

// get reads the raw document of kind/id, nil when it does not exist.
func get(ctx context.Context, c redis.Cmdable, k keys, kind, id string) ([]byte, error) {
	b, err := c.Get(ctx, k.of(kind, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// ref names an entity an edit requires to exist.
type ref struct{ kind, id string }

// edit reads the document of kind/id, applies fn to it and writes it back
// with its stream entry if it changed. Every entity in requires must exist.
// It reports whether anything was written.
func edit[T any](ctx context.Context, w *Writer, kind, id string, requires []ref, fn func(*T) error) (bool, error) {
	watch := []string{w.keys.of(kind, id)}
	for _, r := range requires {
		watch = append(watch, w.keys.of(r.kind, r.id))
	}
	changed := false
	err := w.commit(ctx, watch, func(tx *redis.Tx) ([]change, error) {
		changed = false
		raw, err := get(ctx, tx, w.keys, kind, id)
		if err != nil {
			return nil, err
		}
		if raw == nil {
			return nil, fmt.Errorf("%s %q: %w", kind, id, ErrNotFound)
		}
		for _, r := range requires {
			n, err := tx.Exists(ctx, w.keys.of(r.kind, r.id)).Result()
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, fmt.Errorf("%s %q: %w", r.kind, r.id, ErrNotFound)
			}
		}
		v, err := decodeDoc(kind, id, string(raw))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		doc := v.(*T)
		before, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		if err := fn(doc); err != nil {
			return nil, err
		}
		after, err := json.Marshal(doc)
		if err != nil || bytes.Equal(before, after) {
			return nil, err
		}
		changed = true
		if u, ok := any(doc).(*pdp.User); ok {
			var old pdp.User
			_ = json.Unmarshal(before, &old)
			return userChanges(u, old.Email)
		}
		return []change{{kind: kind, id: id, val: after}}, nil
	})
	return changed && err == nil, err
}

// SuspendUser adds a suspend reason to a user. It reports whether anything
// changed (false when the reason was already there).
func (w *Writer) SuspendUser(ctx context.Context, id, reason string) (bool, error) {
	if strings.TrimSpace(reason) == "" {
		return false, fmt.Errorf("%w: a suspend reason is required", ErrInvalid)
	}
	return edit(ctx, w, KindUser, id, nil, func(u *pdp.User) error {
		if !slices.Contains(u.SuspendReasons, reason) {
			u.SuspendReasons = append(u.SuspendReasons, reason)
		}
		return nil
	})
}

// UnsuspendUser removes one suspend reason of a user, or every one when all
// is set. It reports whether anything changed.
func (w *Writer) UnsuspendUser(ctx context.Context, id, reason string, all bool) (bool, error) {
	if all == (reason != "") {
		return false, fmt.Errorf("%w: give either a reason or all", ErrInvalid)
	}
	return edit(ctx, w, KindUser, id, nil, func(u *pdp.User) error {
		if all {
			u.SuspendReasons = nil
		} else {
			u.SuspendReasons = slices.DeleteFunc(u.SuspendReasons, func(r string) bool { return r == reason })
		}
		return nil
	})
}

// SetBlocked blocks or unblocks a user.
func (w *Writer) SetBlocked(ctx context.Context, id string, blocked bool) (bool, error) {
	return edit(ctx, w, KindUser, id, nil, func(u *pdp.User) error { u.Blocked = blocked; return nil })
}

// SetArchived archives or unarchives a user.
func (w *Writer) SetArchived(ctx context.Context, id string, archived bool) (bool, error) {
	return edit(ctx, w, KindUser, id, nil, func(u *pdp.User) error { u.Archived = archived; return nil })
}

// SetRole gives a user a built-in role or a stored custom role.
func (w *Writer) SetRole(ctx context.Context, id, role string) (bool, error) {
	if role == "" {
		return false, fmt.Errorf("%w: empty role name", ErrInvalid)
	}
	var requires []ref
	if !pdp.IsBuiltinRole(role) {
		requires = []ref{{KindRole, role}}
	}
	return edit(ctx, w, KindUser, id, requires, func(u *pdp.User) error {
		u.Role = role
		if role == pdp.RoleUser {
			u.Role = ""
		}
		return nil
	})
}

// DelegateAccount lets delegate act with all of owner's rights.
func (w *Writer) DelegateAccount(ctx context.Context, owner, delegate string) (bool, error) {
	if owner == delegate {
		return false, fmt.Errorf("%w: a user cannot delegate to itself", ErrInvalid)
	}
	return edit(ctx, w, KindUser, owner, []ref{{KindUser, delegate}}, func(u *pdp.User) error {
		u.AccountDelegates = addOnce(u.AccountDelegates, delegate)
		return nil
	})
}

// UndelegateAccount removes delegate from owner's account delegates.
func (w *Writer) UndelegateAccount(ctx context.Context, owner, delegate string) (bool, error) {
	return edit(ctx, w, KindUser, owner, nil, func(u *pdp.User) error {
		u.AccountDelegates = remove(u.AccountDelegates, delegate)
		return nil
	})
}

// DelegateInfra makes user a delegate of an infrastructure.
func (w *Writer) DelegateInfra(ctx context.Context, infra, user string) (bool, error) {
	return edit(ctx, w, KindInfra, infra, []ref{{KindUser, user}}, func(in *pdp.Infrastructure) error {
		in.Delegates = addOnce(in.Delegates, user)
		return nil
	})
}

// UndelegateInfra removes user from an infrastructure's delegates.
func (w *Writer) UndelegateInfra(ctx context.Context, infra, user string) (bool, error) {
	return edit(ctx, w, KindInfra, infra, nil, func(in *pdp.Infrastructure) error {
		in.Delegates = remove(in.Delegates, user)
		return nil
	})
}

func addOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func remove(list []string, s string) []string {
	out := slices.DeleteFunc(slices.Clone(list), func(x string) bool { return x == s })
	if len(out) == 0 {
		return nil
	}
	return out
}

// AddAPIKey maps the API key (in clear; only its SHA-256 is stored) to a
// user. A key already mapped to another user is refused.
func (w *Writer) AddAPIKey(ctx context.Context, user, key string) (bool, error) {
	if key == "" {
		return false, fmt.Errorf("%w: empty api key", ErrInvalid)
	}
	digest := pdp.APIKeyDigest(key)
	changed := false
	err := w.commit(ctx, []string{w.keys.of(KindAPIKey, digest), w.keys.of(KindUser, user)}, func(tx *redis.Tx) ([]change, error) {
		changed = false
		n, err := tx.Exists(ctx, w.keys.of(KindUser, user)).Result()
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("user %q: %w", user, ErrNotFound)
		}
		cur, err := get(ctx, tx, w.keys, KindAPIKey, digest)
		if err != nil || string(cur) == user {
			return nil, err
		}
		if cur != nil {
			return nil, fmt.Errorf("%w: the api key already belongs to another user", ErrInvalid)
		}
		changed = true
		return []change{{kind: KindAPIKey, id: digest, val: []byte(user)}}, nil
	})
	return changed && err == nil, err
}

// RevokeAPIKey removes an API key (in clear).
func (w *Writer) RevokeAPIKey(ctx context.Context, key string) error {
	digest := pdp.APIKeyDigest(key)
	return w.commit(ctx, []string{w.keys.of(KindAPIKey, digest)}, func(tx *redis.Tx) ([]change, error) {
		cur, err := get(ctx, tx, w.keys, KindAPIKey, digest)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			return nil, fmt.Errorf("api key: %w", ErrNotFound)
		}
		return []change{{kind: KindAPIKey, id: digest, del: true}}, nil
	})
}
