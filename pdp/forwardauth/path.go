package forwardauth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Limits on an original request URI.
const (
	maxURILength = 8192
	maxSegments  = 64
)

// errAmbiguousPath is wrapped by every refusal of splitURI.
var errAmbiguousPath = errors.New("ambiguous or malformed path")

// splitURI splits an origin-form request target ("/a/b?q=1") into its
// decoded path segments and its raw query, refusing every form an upstream
// might read differently from the route table:
//   - no leading "/", a fragment, an over-long URI or too many segments;
//   - an empty segment (a double slash, a trailing slash);
//   - a "." or ".." segment, literally or percent-encoded;
//   - a raw backslash, ";" (path parameters), control character, space or
//     non-ASCII byte;
//   - a bad percent escape, or one that decodes to "/", "\", ";", "%", a
//     control character, a space or invalid UTF-8 (so double encoding such
//     as %252e cannot become a dot segment in a second decoding).
//
// Matching is case-sensitive: a path in another case than the route table
// matches no route and is denied.
func splitURI(uri string) ([]string, string, error) {
	if len(uri) > maxURILength {
		return nil, "", fmt.Errorf("%w: longer than %d bytes", errAmbiguousPath, maxURILength)
	}
	path, query, _ := strings.Cut(uri, "?")
	if strings.ContainsRune(uri, '#') {
		return nil, "", fmt.Errorf("%w: fragment", errAmbiguousPath)
	}
	if !strings.HasPrefix(path, "/") {
		return nil, "", fmt.Errorf("%w: does not start with /", errAmbiguousPath)
	}
	if path == "/" {
		return nil, query, nil
	}
	raw := strings.Split(path[1:], "/")
	if len(raw) > maxSegments {
		return nil, "", fmt.Errorf("%w: more than %d segments", errAmbiguousPath, maxSegments)
	}
	segs := make([]string, len(raw))
	for i, s := range raw {
		d, err := cleanSegment(s)
		if err != nil {
			return nil, "", fmt.Errorf("%w: segment %d: %w", errAmbiguousPath, i+1, err)
		}
		segs[i] = d
	}
	return segs, query, nil
}

// cleanSegment decodes one raw path segment or says why it is refused.
func cleanSegment(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty segment (double or trailing slash)")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' || c == ';' {
			return "", fmt.Errorf("character %q", c)
		}
	}
	d := s
	if strings.IndexByte(s, '%') >= 0 {
		var err error
		if d, err = url.PathUnescape(s); err != nil {
			return "", errors.New("bad percent escape")
		}
		if !utf8.ValidString(d) {
			return "", errors.New("escape decodes to invalid UTF-8")
		}
		for _, r := range d {
			if r <= ' ' || r == 0x7f || strings.ContainsRune("/\\;%", r) {
				return "", fmt.Errorf("escape decodes to %q", r)
			}
		}
	}
	if d == "." || d == ".." {
		return "", errors.New("dot segment")
	}
	return d, nil
}

// originForm turns an absolute URL ("https://host/a?b", as nginx's
// X-Original-URL carries it) into its request target ("/a?b").
func originForm(u string) (string, error) {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return "", fmt.Errorf("%w: not an http(s) URL", errAmbiguousPath)
	}
	i := strings.IndexAny(rest, "/?#")
	if i < 0 {
		return "/", nil
	}
	if rest[i] != '/' {
		return "/" + rest[i:], nil
	}
	return rest[i:], nil
}
