package redisstate

import (
	"fmt"
	"strconv"
	"strings"
)

// Kinds of stream entries and of cached facts (docs/redis.md, "The change stream").
const (
	KindUser     = "user"
	KindAccount  = "account"
	KindRole     = "role"
	KindInfra    = "infra"
	KindResource = "resource" // id is "{kind}:{id}"
	KindAPIKey   = "apikey"   // id is the SHA-256 hex of the key
	KindEmail    = "email"    // id is the email, ASCII letters lower-cased (pdp.FoldEmail)
	KindGlobal   = "global"   // no id
	KindAll      = "all"      // everything may have changed
)

// DefaultPrefix is the key prefix when Options.Prefix is empty, except in
// Cluster mode, where it is DefaultClusterPrefix.
const DefaultPrefix = "pdp:"

// DefaultClusterPrefix is the default prefix in Cluster mode: the hash tag
// puts every key and the stream on one slot, so each write can be one
// MULTI/EXEC with its stream entry.
const DefaultClusterPrefix = "{pdp}:"

// streamMaxLen bounds the change stream (XADD MAXLEN ~).
const streamMaxLen = 1_000_000

// keys builds the Redis key names under one prefix.
type keys struct{ prefix string }

// of returns the key of an entity: prefix + kind + ":" + id, or
// prefix + "global".
func (k keys) of(kind, id string) string {
	if kind == KindGlobal {
		return k.prefix + KindGlobal
	}
	return k.prefix + kind + ":" + id
}

// stream is the change stream's key.
func (k keys) stream() string { return k.prefix + "changes" }

// cacheKey names a fact in the cache: kind + ":" + id, "global" for the
// global document. It is the key without the prefix.
func cacheKey(kind, id string) string {
	if kind == KindGlobal {
		return KindGlobal
	}
	return kind + ":" + id
}

// hasHashTag reports whether prefix holds a Redis Cluster hash tag: a "{"
// followed later by "}" with at least one character between them.
func hasHashTag(prefix string) bool {
	open := strings.IndexByte(prefix, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(prefix[open+1:], '}')
	return end > 0
}

// streamID is a parsed stream entry id "ms-seq".
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, error) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		seq = "0"
	}
	a, err := strconv.ParseUint(ms, 10, 64)
	if err != nil {
		return streamID{}, fmt.Errorf("stream id %q: %w", s, err)
	}
	b, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return streamID{}, fmt.Errorf("stream id %q: %w", s, err)
	}
	return streamID{a, b}, nil
}

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq)
}

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}
