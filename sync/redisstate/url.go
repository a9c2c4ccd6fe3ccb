package redisstate

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// newClient builds the go-redis client for a URL:
//
//	redis://[user:pass@]host:port[/db][?option=value...]      single node
//	rediss://...                                              single node, TLS
//	unix://[user:pass@]/path/to/socket[?db=N]                 single node, Unix socket
//	redis+sentinel://[user:pass@]host:port[,host:port...]/master[/db][?...]
//	redis+cluster://[user:pass@]host:port[,host:port...][?...]
//
// with rediss+sentinel and rediss+cluster for TLS. The options are go-redis'
// URL options (dial_timeout, read_timeout, pool_size, ...). For Sentinel the
// user and password are used for the sentinels and the master alike, unless
// the username and password options set the master's. It reports whether the
// client is a cluster client. With noRetry the client never retries a
// failed command, so that its caller sees every lost connection.
func newClient(raw string, noRetry bool) (redis.UniversalClient, bool, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, false, fmt.Errorf("redis url %q: missing scheme", redact(raw))
	}
	switch scheme {
	case "redis", "rediss", "unix":
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, false, fmt.Errorf("redis url %q: %w", redact(raw), err)
		}
		if noRetry {
			o.MaxRetries = -1
		}
		return redis.NewClient(o), false, nil
	case "redis+cluster", "rediss+cluster":
		u, err := multiHostURL(strings.TrimSuffix(scheme, "+cluster"), rest, false)
		if err != nil {
			return nil, false, fmt.Errorf("redis url %q: %w", redact(raw), err)
		}
		o, err := redis.ParseClusterURL(u)
		if err != nil {
			return nil, false, fmt.Errorf("redis url %q: %w", redact(raw), err)
		}
		if noRetry {
			o.MaxRetries = -1
		}
		return redis.NewClusterClient(o), true, nil
	case "redis+sentinel", "rediss+sentinel":
		u, err := multiHostURL(strings.TrimSuffix(scheme, "+sentinel"), rest, true)
		if err != nil {
			return nil, false, fmt.Errorf("redis url %q: %w", redact(raw), err)
		}
		o, err := redis.ParseFailoverURL(u)
		if err != nil {
			return nil, false, fmt.Errorf("redis url %q: %w", redact(raw), err)
		}
		if o.Username == "" && o.Password == "" {
			o.Username, o.Password = o.SentinelUsername, o.SentinelPassword
		}
		if noRetry {
			o.MaxRetries = -1
		}
		return redis.NewFailoverClient(o), false, nil
	}
	return nil, false, fmt.Errorf("redis url %q: unknown scheme %q (want redis, rediss, unix, redis+sentinel, redis+cluster)", redact(raw), scheme)
}

// multiHostURL turns "[userinfo@]h:p,h:p[/path][?query]" into the go-redis
// form "scheme://[userinfo@]h:p[/db]?addr=h:p&..." (and master_name=... for
// Sentinel, whose path starts with the master's name).
func multiHostURL(scheme, rest string, sentinel bool) (string, error) {
	rest, query, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	userinfo := ""
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo, authority = authority[:at+1], authority[at+1:]
	}
	hosts := strings.Split(authority, ",")
	for _, h := range hosts {
		if h == "" {
			return "", errors.New("empty host in host list")
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", err
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	db := ""
	if sentinel {
		master, rest, _ := strings.Cut(path, "/")
		if master == "" {
			return "", errors.New("sentinel url needs the master name as its path: redis+sentinel://host:port,host:port/mastername")
		}
		q.Set("master_name", master)
		db = rest
	} else if path != "" {
		return "", fmt.Errorf("unexpected path %q (a cluster has no database number)", path)
	}
	u := scheme + "://" + userinfo + hosts[0]
	if db != "" {
		u += "/" + db
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u, nil
}

// redact hides the password of a URL in error messages.
func redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	authority, tail, _ := strings.Cut(rest, "/")
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(authority[:at], ":")
	if !hasPass {
		return raw
	}
	out := scheme + "://" + user + ":xxxxx@" + authority[at+1:]
	if strings.Contains(rest, "/") {
		out += "/" + tail
	}
	return out
}
