package wire

import (
	"unsafe"

	"github.com/metalsoft-io/pdp/pdp"
)

// The fast decoder reads the body in place: its strings are views of the
// caller's bytes, which the HTTP server reuses for the next request once
// this one is answered. So before a decoded request leaves the package,
// ownStrings gives it strings of its own: its action and kind become pdp's
// own constants (interned, no copy), and every other string it keeps is
// copied into one allocation for the whole body. Attributes never view the
// body: they are decoded from a copy of their text (attrs.go).
//
// A new string member of pdp.Request must be copied here as well:
// FuzzDecodeBatch and FuzzDecodeCheck overwrite the body after decoding and
// fail on any request that changed with it.

// bodyString views body as a string without copying it. The string is valid
// only while body is neither modified nor reused.
func bodyString(body []byte) string { return unsafe.String(unsafe.SliceData(body), len(body)) }

// interned maps every action and kind to pdp's own string of it.
var interned = func() map[string]string {
	m := map[string]string{}
	for _, s := range append(pdp.Actions(), pdp.Kinds()...) {
		m[s] = s
	}
	return m
}()

// ownStrings gives the strings of reqs, all decoded from one body by the
// fast decoder, validated, and sharing the first's principal and acting_as,
// storage of their own.
func ownStrings(reqs []pdp.Request) {
	if len(reqs) == 0 {
		return
	}
	first := &reqs[0]
	n := len(first.Principal.ID) + len(first.Principal.Email) + len(first.Principal.APIKey) + len(first.ActingAs)
	for i := range reqs {
		r := &reqs[i]
		n += len(r.Resource.ID)
		for _, f := range r.Fields {
			n += len(f)
		}
	}
	a := arena{buf: make([]byte, 0, n)}
	who := pdp.Principal{ID: a.copy(first.Principal.ID), Email: a.copy(first.Principal.Email), APIKey: a.copy(first.Principal.APIKey)}
	actingAs := a.copy(first.ActingAs)
	for i := range reqs {
		r := &reqs[i]
		r.Principal, r.ActingAs = who, actingAs
		r.Action, r.Resource.Kind = a.intern(r.Action), a.intern(r.Resource.Kind)
		r.Resource.ID = a.copy(r.Resource.ID)
		for j, f := range r.Fields {
			r.Fields[j] = a.copy(f)
		}
	}
}

// arena copies strings into one buffer, sized beforehand for all but the
// interned ones.
type arena struct{ buf []byte }

// copy returns a copy of s in the arena. Should the buffer grow, the
// strings copied before keep the old one, which is never written again.
func (a *arena) copy(s string) string {
	if s == "" {
		return ""
	}
	start := len(a.buf)
	a.buf = append(a.buf, s...)
	return unsafe.String(&a.buf[start], len(s))
}

// intern returns pdp's own string equal to s, an action or a kind (a
// validated request holds no other), else a copy of s.
func (a *arena) intern(s string) string {
	if c, ok := interned[s]; ok {
		return c
	}
	return a.copy(s)
}
