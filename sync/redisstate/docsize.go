package redisstate

import (
	"encoding/json"
	"unsafe"

	"github.com/metalsoft-io/pdp/pdp"
)

// The facts cache is bounded by what its entries hold in memory, not by the
// length of the JSON they were decoded from: a decoded document is a struct,
// strings, slices and Go maps, often twice the size of its JSON. docBytes
// estimates that from the decoded value; entryOverhead (cache.go) adds what
// every entry costs besides (the entry, its key, ristretto's bookkeeping).
// TestCacheHeapWithinBudget holds the estimate to the heap it describes.

// docBytes estimates the heap a decoded document holds.
func docBytes(v any) int {
	switch d := v.(type) {
	case *pdp.User:
		return int(unsafe.Sizeof(*d)) + len(d.ID) + len(d.Email) + len(d.Account) + len(d.Role) +
			stringsBytes(d.SuspendReasons) + stringsBytes(d.AccountDelegates) + stringsBytes(d.CredentialAccess) +
			numbersBytes(d.Limits) + numbersBytes(d.Usage)
	case *pdp.Account:
		return int(unsafe.Sizeof(*d)) + len(d.ID) + len(d.Name) + numbersBytes(d.Limits)
	case *pdp.Role:
		n := int(unsafe.Sizeof(*d)) + len(d.Name) + stringsBytes(d.Permissions)
		for _, r := range d.Rules {
			n += int(unsafe.Sizeof(r)) + len(r.Subject) + stringsBytes(r.Actions) + stringsBytes(r.Fields) + attrBytes(r.Conditions)
		}
		return n
	case *pdp.Infrastructure:
		return int(unsafe.Sizeof(*d)) + len(d.ID) + len(d.Owner) + len(d.Label) + stringsBytes(d.Delegates) + attrBytes(d.Attr)
	case *pdp.Resource:
		return int(unsafe.Sizeof(*d)) + len(d.Kind) + len(d.ID) + len(d.Owner) + len(d.Visibility) + attrBytes(d.Attr)
	case *pdp.Global:
		return int(unsafe.Sizeof(*d)) + numbersBytes(d.Limits)
	}
	return 0
}

// Sizes of the parts of Go values docBytes counts.
const (
	stringHeader = int(unsafe.Sizeof(""))
	ifaceHeader  = int(unsafe.Sizeof(any(nil)))
	sliceHeader  = int(unsafe.Sizeof([]any(nil)))
	mapHeader    = 48 // a map's own header; its slots come in groups of 8
)

func stringsBytes(ss []string) int {
	n := cap(ss) * stringHeader
	for _, s := range ss {
		n += len(s)
	}
	return n
}

// mapBytes is a map of n entries whose key and value take slot bytes and a
// control byte each: slots come in groups of eight, filled to 7/8 at most.
func mapBytes(n, slot int) int {
	if n == 0 {
		return mapHeader
	}
	groups := (n*8/7 + 7) / 8
	return mapHeader + groups*8*(slot+1)
}

func numbersBytes(m map[string]int64) int {
	if m == nil {
		return 0
	}
	n := mapBytes(len(m), stringHeader+8)
	for k := range m {
		n += len(k)
	}
	return n
}

func attrBytes(m map[string]any) int {
	if m == nil {
		return 0
	}
	n := mapBytes(len(m), stringHeader+ifaceHeader)
	for k, v := range m {
		n += len(k) + valueBytes(v)
	}
	return n
}

// valueBytes is a decoded JSON value held in an interface: what the
// interface points to.
func valueBytes(v any) int {
	switch x := v.(type) {
	case string:
		return stringHeader + len(x)
	case json.Number:
		return stringHeader + len(x)
	case map[string]any:
		return attrBytes(x)
	case []any:
		n := sliceHeader + cap(x)*ifaceHeader
		for _, e := range x {
			n += valueBytes(e)
		}
		return n
	case float64, int64, int:
		return 8
	}
	return 0 // bool and nil point to static data
}
