package redisstate

import (
	"strings"
	"testing"
	"unsafe"
)

// fastCase is a document and whether the one-pass decoder takes it (else
// the general decoding does).
type fastCase struct {
	doc  string
	fast bool
}

var fixedUserCases = []fastCase{
	{`{"id":"u-1","account":"acct","usage":{"servers":3}}`, true},
	{` { "id" : "u-1" , "email":"a@b.c","role":"support","billable":true,"blocked":false,"archived":true,
	  "suspend_reasons":["unpaid","abuse"],"account_delegates":[],"credential_access":["inf-1"],
	  "limits":{"servers":-5,"drives":0},"usage":{}}` + "\n\t\r ", true},
	{`{"id":"u-1","usage":{"servers":9223372036854775807,"drives":-9223372036854775808}}`, true},
	{`{"id":"u-1","usage":{"a":1,"a":2}}`, true}, // a map key given twice: the last, as encoding/json
	{`{"id":"u-é","account":"日本"}`, true},
	{`{}`, true},
	// Left to encoding/json:
	{`{"id":"u-1","id":"u-2"}`, false},                        // a member given twice
	{`{"ID":"u-1"}`, false},                                   // another case: encoding/json folds it
	{`{"id":"u-1","bogus":1}`, false},                         // unknown member: an error
	{`{"id":null}`, false},                                    // null
	{`{"id":"u-1","usage":null}`, false},                      // null
	{`{"id":"u-1","suspend_reasons":[null]}`, false},          // null
	{`{"id":"u-1"} {}`, false},                                // trailing data
	{`{"id":"u-1"}x`, false},                                  // trailing data
	{`{"id":"u\u002d1"}`, false},                              // an escape
	{`{"\u0069d":"u-1"}`, false},                              // an escaped name
	{"{\"id\":\"u-\xff\"}", false},                            // invalid UTF-8
	{"{\"id\":\"u-\x01\"}", false},                            // a control character
	{`{"id":"u-1","usage":{"servers":1.0}}`, false},           // a fraction
	{`{"id":"u-1","usage":{"servers":1e3}}`, false},           // an exponent
	{`{"id":"u-1","usage":{"servers":01}}`, false},            // a leading zero
	{`{"id":"u-1","usage":{"servers":-}}`, false},             // no digits
	{`{"id":"u-1","usage":{"servers":"3"}}`, false},           // a string
	{`{"id":"u-1","usage":{"s":9223372036854775808}}`, false}, // overflow
	{`{"id":"u-1","billable":"true"}`, false},                 // not a boolean
	{`{"id":"u-1","billable":tru}`, false},                    // truncated
	{`{"id":"u-1",}`, false},                                  // trailing comma
	{`{"id":"u-1"`, false},                                    // unterminated
	{`{"id":"u-1`, false},                                     // unterminated string
	{`[]`, false},                                             // not an object
	{`null`, false},                                           // not an object
	{``, false},                                               // nothing
	{`{"id":"u-1","limits":{"a":{"b":1}}}`, false},            // nested deeper
}

var fixedInfrastructureCases = []fastCase{
	{`{"id":"inf-1","owner":"u-1","delegates":["u-2"]}`, true},
	{`{"id":"a","owner":"u","delegates":[],"label":"web"}`, true},
	{`{"id":"a","ID":"b","owner":"u"}`, false},                           // an attribute named in another case
	{`{"id":"a","owner":"u","status":"active"}`, false},                  // an attribute
	{`{"\u0069d":"a","owner":"u","id":null}`, false},                     // an escape, a null
	{`{"id":"a","owner":"u","delegates":["x"],"delegates":null}`, false}, // a member given twice
	{`{"id":"a","owner":"u"} {}`, false},                                 // trailing data
	{`{"id":"a","label":5}`, false},                                      // not a string
}

// TestFixedDecoders: each one-pass decoder takes exactly the documents of
// the common shape, and decodes them as encoding/json does.
func TestFixedDecoders(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 100_000)
	huge := `{"id":"u-1","suspend_reasons":[` + strings.Repeat(`"x",`, 100_000) + `"y"]}`
	users := append(fixedUserCases, fastCase{`{"id":"u-1","limits":` + deep, false}, fastCase{huge, true})
	for _, c := range users {
		if _, ok := decodeFixedUser(c.doc); ok != c.fast {
			t.Errorf("user %.60q: one pass %v, want %v", c.doc, ok, c.fast)
		}
		sameAsStrict(t, c.doc, decodeFixedUser)
	}
	for _, c := range append(fixedInfrastructureCases, fastCase{deep, false}) {
		if _, ok := decodeFixedInfrastructure(c.doc); ok != c.fast {
			t.Errorf("infrastructure %.60q: one pass %v, want %v", c.doc, ok, c.fast)
		}
		sameAsStrict(t, c.doc, decodeFixedInfrastructure)
	}
}

// TestFixedDecodersOwnStrings: a decoded document does not hold on to the
// reply it was read from.
func TestFixedDecodersOwnStrings(t *testing.T) {
	raw := `{"id":"u-1","email":"a@b.c","suspend_reasons":["x"],"usage":{"servers":3}}`
	u, ok := decodeFixedUser(raw)
	if !ok {
		t.Fatal("not decoded in one pass")
	}
	base := uintptr(unsafe.Pointer(unsafe.StringData(raw)))
	inside := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return base <= p && p < base+uintptr(len(raw))
	}
	for k := range u.Usage {
		if inside(k) {
			t.Errorf("usage key %q points into the reply", k)
		}
	}
	for _, s := range []string{u.ID, u.Email, u.SuspendReasons[0]} {
		if inside(s) {
			t.Errorf("%q points into the reply", s)
		}
	}
}
