package redisstate

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/metalsoft-io/pdp/pdp"
)

// A cold decision decodes the user and the infrastructure it reads from
// Redis; with encoding/json (reflection, a decoder per document) that was
// as much CPU as the round trip. The decoders here read the common shape
// of those two documents in one pass over the bytes: known members named
// exactly, each once, strings without escapes, no nulls, integers as plain
// literals. For anything else (and so for every error) they report false
// and the caller decodes the document as before, which gives the same
// value or reports the problem in the same words. FuzzDecodeFixedUser and
// FuzzDecodeFixedInfrastructure hold them to that.

// scanner reads JSON from s, at i.
type scanner struct {
	s    string
	i    int
	seen uint32 // the members read so far, a bit each (see once)
}

// ws skips JSON whitespace.
func (p *scanner) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// eat skips whitespace and then c, reporting whether c was there.
func (p *scanner) eat(c byte) bool {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether nothing but whitespace is left.
func (p *scanner) end() bool {
	p.ws()
	return p.i == len(p.s)
}

// str reads a string without escapes or control characters, of valid
// UTF-8 (encoding/json would replace invalid bytes). The result shares
// memory with the input.
func (p *scanner) str() (string, bool) {
	if !p.eat('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.s); p.i++ {
		switch c := p.s[p.i]; {
		case c == '"':
			v := p.s[start:p.i]
			p.i++
			return v, utf8.ValidString(v)
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// text reads a string into *dst, a copy of its own: a cached document must
// not hold on to the whole reply it came from.
func (p *scanner) text(dst *string) bool {
	v, ok := p.str()
	*dst = strings.Clone(v)
	return ok
}

// object reads an object, calling member with each member's name to read
// its value; it reports false as soon as member does.
func (p *scanner) object(member func(name string) bool) bool {
	if !p.eat('{') {
		return false
	}
	if p.eat('}') {
		return true
	}
	for {
		name, ok := p.str()
		if !ok || !p.eat(':') || !member(name) {
			return false
		}
		if p.eat('}') {
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}

// texts reads an array of strings; [] is an empty slice, not nil, as
// encoding/json decodes it.
func (p *scanner) texts(dst *[]string) bool {
	if !p.eat('[') {
		return false
	}
	list := []string{}
	if !p.eat(']') {
		for {
			var s string
			if !p.text(&s) {
				return false
			}
			list = append(list, s)
			if p.eat(']') {
				break
			}
			if !p.eat(',') {
				return false
			}
		}
	}
	*dst = list
	return true
}

// boolean reads true or false.
func (p *scanner) boolean(dst *bool) bool {
	p.ws()
	switch rest := p.s[p.i:]; {
	case strings.HasPrefix(rest, "true"):
		*dst, p.i = true, p.i+4
	case strings.HasPrefix(rest, "false"):
		*dst, p.i = false, p.i+5
	default:
		return false
	}
	return true
}

// integer reads an integer literal (no fraction, no exponent: the caller
// finds those where it expects a separator) that fits an int64.
func (p *scanner) integer() (int64, bool) {
	p.ws()
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	digits := p.i
	if p.i < len(p.s) && p.s[p.i] == '0' {
		p.i++
	} else {
		for p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9' {
			p.i++
		}
	}
	if p.i == digits {
		return 0, false
	}
	n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
	return n, err == nil
}

// numbers reads an object of integers; {} is an empty map, not nil, as
// encoding/json decodes it.
func (p *scanner) numbers(dst *map[string]int64) bool {
	m := map[string]int64{}
	ok := p.object(func(name string) bool {
		n, ok := p.integer()
		m[strings.Clone(name)] = n // a key given twice: the last counts, as in encoding/json
		return ok
	})
	*dst = m
	return ok
}

// once records the member of the given bit as read and reports whether it
// is the first time: a member given twice goes to the general decoder.
func (p *scanner) once(bit uint) bool {
	if p.seen&(1<<bit) != 0 {
		return false
	}
	p.seen |= 1 << bit
	return true
}

// document reads one object, each member by member (false for a member it
// does not take), with nothing after it.
func (p *scanner) document(member func(name string) bool) bool {
	return p.object(member) && p.end()
}

// decodeFixedUser decodes a user document in one pass, or reports false
// for anything but the common shape (see above).
func decodeFixedUser(raw string) (*pdp.User, bool) {
	p, u := scanner{s: raw}, &pdp.User{}
	ok := p.document(func(name string) bool {
		switch name {
		case "id":
			return p.once(0) && p.text(&u.ID)
		case "email":
			return p.once(1) && p.text(&u.Email)
		case "account":
			return p.once(2) && p.text(&u.Account)
		case "role":
			return p.once(3) && p.text(&u.Role)
		case "billable":
			return p.once(4) && p.boolean(&u.Billable)
		case "blocked":
			return p.once(5) && p.boolean(&u.Blocked)
		case "archived":
			return p.once(6) && p.boolean(&u.Archived)
		case "suspend_reasons":
			return p.once(7) && p.texts(&u.SuspendReasons)
		case "account_delegates":
			return p.once(8) && p.texts(&u.AccountDelegates)
		case "limits":
			return p.once(9) && p.numbers(&u.Limits)
		case "usage":
			return p.once(10) && p.numbers(&u.Usage)
		case "credential_access":
			return p.once(11) && p.texts(&u.CredentialAccess)
		}
		return false
	})
	return u, ok
}

// decodeFixedInfrastructure decodes an infrastructure document made of
// fixed fields only, in one pass, or reports false for anything else: an
// attribute, a member named in another case (an attribute for
// pdp.Infrastructure, unlike in a struct's decoding), anything but the
// common shape (see above).
func decodeFixedInfrastructure(raw string) (*pdp.Infrastructure, bool) {
	p, in := scanner{s: raw}, &pdp.Infrastructure{}
	ok := p.document(func(name string) bool {
		switch name {
		case "id":
			return p.once(0) && p.text(&in.ID)
		case "owner":
			return p.once(1) && p.text(&in.Owner)
		case "delegates":
			return p.once(2) && p.texts(&in.Delegates)
		case "label":
			return p.once(3) && p.text(&in.Label)
		}
		return false
	})
	return in, ok
}
