package redisstate

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// indexScript resolves an index key (email, API key) to a user id and reads
// that user's document, in one call. ARGV[1] is the user key prefix; in
// Cluster mode the prefix's hash tag keeps both keys on one slot.
const indexScript = `local id = redis.call('GET', KEYS[1])
if not id then return false end
return {id, redis.call('GET', ARGV[1] .. id)}`

// read reads refs from Redis in one pipelined round trip and caches the
// results. For each ref it returns its entry, or the error wrapping
// pdp.ErrUnavailable with which Redis failed to read it. Every entry's
// generation sequence is taken before the read starts.
func (s *Source) read(refs []Ref) ([]*entry, []error) {
	ctx := context.Background() // the lookups waiting each stop at their own deadline
	seq := s.cache.gen.begin()
	cmds := make([]redis.Cmder, len(refs))
	userPrefix := s.keys.of(KindUser, "")
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range refs {
			if r.Kind == KindEmail || r.Kind == KindAPIKey {
				cmds[i] = p.Eval(ctx, indexScript, []string{s.keys.of(r.Kind, r.ID)}, userPrefix)
			} else {
				cmds[i] = p.Get(ctx, s.keys.of(r.Kind, r.ID))
			}
		}
		return nil
	})
	s.stats.loads.Add(1)
	if s.afterRead != nil {
		s.afterRead()
	}
	out := make([]*entry, len(refs))
	errs := make([]error, len(refs))
	for i, r := range refs {
		switch err := cmds[i].Err(); {
		case err != nil && !errors.Is(err, redis.Nil) && !isWrongType(err):
			s.stats.redisErrors.Add(1)
			errs[i] = unavailable(err)
		case r.Kind == KindEmail || r.Kind == KindAPIKey:
			out[i] = s.indexEntry(seq, r, cmds[i].(*redis.Cmd))
		default:
			out[i] = s.docEntry(seq, r, cmds[i].(*redis.StringCmd))
		}
	}
	return out, errs
}

// checkUp fails fast, without a round trip, while the tailer knows Redis is
// down.
func (s *Source) checkUp() error {
	if s.closed.Load() {
		return unavailable(errors.New("source closed"))
	}
	if !s.up.Load() {
		s.mu.Lock()
		defer s.mu.Unlock()
		return unavailable(s.lastErr)
	}
	return nil
}

// isWrongType reports a key holding a non-string value: a malformed entity,
// not an unavailable Redis.
func isWrongType(err error) bool { return strings.HasPrefix(err.Error(), "WRONGTYPE") }

// docEntry builds and caches the entry of a plain document read.
func (s *Source) docEntry(seq uint64, r Ref, cmd *redis.StringCmd) *entry {
	key := r.cacheKey()
	raw, err := cmd.Result()
	var val any
	switch {
	case errors.Is(err, redis.Nil):
		err = nil
	case err != nil:
		err = s.malformed(r, err)
	default:
		if val, err = decodeDoc(r.Kind, r.ID, raw); err != nil {
			err = s.malformed(r, err)
			val = nil
		}
		if role, ok := val.(*pdp.Role); ok {
			s.invalidRole(r, role)
		}
	}
	e := s.cache.gen.newEntry(seq, val, err, key)
	s.cache.put(key, e, docBytes(val))
	return e
}

// indexEntry builds and caches the entry of an index lookup (email, API
// key) and the entry of the user it names.
func (s *Source) indexEntry(seq uint64, r Ref, cmd *redis.Cmd) *entry {
	key := r.cacheKey()
	res, err := cmd.Slice()
	if errors.Is(err, redis.Nil) {
		e := s.cache.gen.newEntry(seq, nil, nil, key)
		s.cache.put(key, e, 0)
		return e
	}
	if err != nil || len(res) != 2 {
		e := s.cache.gen.newEntry(seq, nil, s.malformed(r, errors.Join(err, errors.New("unexpected index reply"))), key)
		s.cache.put(key, e, 0)
		return e
	}
	id, _ := res[0].(string)
	raw, _ := res[1].(string)
	userRef := Ref{KindUser, id}
	userKey := userRef.cacheKey()
	var val any
	if raw != "" {
		val, err = decodeDoc(KindUser, id, raw)
		if err != nil {
			err = s.malformed(userRef, err)
			val = nil
		}
		s.cache.put(userKey, s.cache.gen.newEntry(seq, val, err, userKey), docBytes(val))
	}
	if u, ok := val.(*pdp.User); ok && r.Kind == KindEmail && u.Email != "" && !pdp.EqualEmail(u.Email, r.ID) {
		val = nil // stale index entry
	}
	// The user document is counted again: it lives on while either entry
	// holds it.
	e := s.cache.gen.newEntry(seq, val, err, key, userKey)
	s.cache.put(key, e, docBytes(val)+len(id))
	return e
}

// invalidRole logs each problem that makes a stored role invalid. The role
// is still served: the policy denies its holders role_invalid, as for a
// state file, and the rest of the state serves.
func (s *Source) invalidRole(r Ref, role *pdp.Role) {
	for _, p := range statefile.RoleProblems(role) {
		s.log.Warn("invalid role in redis: its holders are denied role_invalid", "key", s.keys.of(r.Kind, r.ID), "role", role.Name, "problem", p)
	}
}

// malformed logs a document that cannot be used and returns the error that
// lookups needing it report.
func (s *Source) malformed(r Ref, err error) error {
	s.stats.malformed.Add(1)
	s.log.Error("unusable document in redis", "key", s.keys.of(r.Kind, r.ID), "err", err)
	return err
}
