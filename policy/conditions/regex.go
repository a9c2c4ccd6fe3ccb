package conditions

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// regexTemplate is a $regex pattern with placeholders in it
// ("^${principal.id}-"): each is replaced, at evaluation, by the principal's
// field with every metacharacter quoted, inside a non-capturing group so
// that the value is one literal atom whatever surrounds it.
type regexTemplate struct {
	parts []string   // the literal pieces around the placeholders, len(refs)+1
	refs  [][]string // principal paths

	mu    sync.Mutex
	cache map[string]*regexp.Regexp // by expanded pattern
}

// maxRegexCache bounds the expanded patterns a template keeps compiled;
// when it is full it starts over.
const maxRegexCache = 256

// parseRegexTemplate splits a pattern at its placeholders. Every "${" in it
// must begin a well-formed placeholder naming a user field. It returns nil
// for a pattern without placeholders.
func parseRegexTemplate(pat string) (*regexTemplate, error) {
	if !strings.Contains(pat, "${") {
		return nil, nil
	}
	t := &regexTemplate{}
	rest := pat
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			break
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("malformed placeholder in %q: no closing \"}\"", pat)
		}
		ref, err := placeholder(rest[i : i+end+1])
		if err != nil {
			return nil, err
		}
		t.parts = append(t.parts, rest[:i])
		t.refs = append(t.refs, ref)
		rest = rest[i+end+1:]
	}
	t.parts = append(t.parts, rest)
	// A quoted value is a literal atom: the pattern compiles with any value
	// when it compiles with one.
	vals := make([]string, len(t.refs))
	for i := range vals {
		vals[i] = "x"
	}
	if _, err := regexp.Compile(t.expand(vals)); err != nil {
		return nil, err
	}
	t.cache = make(map[string]*regexp.Regexp)
	return t, nil
}

// expand assembles the pattern with the given (unquoted) values.
func (t *regexTemplate) expand(vals []string) string {
	var b strings.Builder
	for i, p := range t.parts {
		b.WriteString(p)
		if i < len(vals) {
			b.WriteString("(?:")
			b.WriteString(regexp.QuoteMeta(vals[i]))
			b.WriteString(")")
		}
	}
	return b.String()
}

// resolve returns the regular expression for a principal; ok is false when
// a placeholder names a field the principal lacks, or one that is not a
// string, number or boolean.
func (t *regexTemplate) resolve(principal map[string]any) (*regexp.Regexp, bool) {
	vals := make([]string, len(t.refs))
	for i, ref := range t.refs {
		v, ok := lookup(principal, ref)
		if !ok {
			return nil, false
		}
		if vals[i], ok = regexText(v); !ok {
			return nil, false
		}
	}
	pat := t.expand(vals)
	t.mu.Lock()
	defer t.mu.Unlock()
	if re, ok := t.cache[pat]; ok {
		return re, true
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, false
	}
	if len(t.cache) >= maxRegexCache {
		t.cache = make(map[string]*regexp.Regexp)
	}
	t.cache[pat] = re
	return re, true
}

// regexText is the text a principal's value stands for in a pattern.
func regexText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return fmt.Sprint(x), true
	}
	if _, ok := toNumber(v); ok {
		return fmt.Sprint(v), true
	}
	return "", false
}
