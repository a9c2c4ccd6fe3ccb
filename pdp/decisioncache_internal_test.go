package pdp

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func keyOf(t *testing.T, req *Request) ([]byte, bool) {
	t.Helper()
	kb := &keyBuf{}
	b, ok := kb.appendQuestion(appendPrincipal(nil, req), req)
	if len(kb.members) != 0 {
		t.Fatalf("member stack not emptied: %v", kb.members)
	}
	return b, ok
}

// TestRequestKeyDistinct: requests that differ anywhere have different
// keys; the same request built twice has the same key.
func TestRequestKeyDistinct(t *testing.T) {
	base := func() *Request {
		return &Request{Principal: Principal{ID: "u-ops"}, Action: "deploy", Fields: []string{"a", "b"},
			Resource: ResourceRef{Kind: "infrastructure", ID: "inf-web", Attr: map[string]any{
				"deploy_type": "edit", "requested": map[string]any{"servers": 2, "drives": json.Number("1")},
				"tags": []any{"x", true, nil, 1.5}}}}
	}
	variants := map[string]func(r *Request){
		"id as email":        func(r *Request) { r.Principal = Principal{Email: "u-ops"} },
		"id as api key":      func(r *Request) { r.Principal = Principal{APIKey: "u-ops"} },
		"acting as":          func(r *Request) { r.ActingAs = "u-bi" },
		"action":             func(r *Request) { r.Action = "read" },
		"kind":               func(r *Request) { r.Resource.Kind = "server" },
		"resource id":        func(r *Request) { r.Resource.ID = "inf-we" },
		"id split":           func(r *Request) { r.Principal.ID, r.Action = "u-opsdeploy", "" },
		"fields":             func(r *Request) { r.Fields = []string{"ab"} },
		"no fields":          func(r *Request) { r.Fields = nil },
		"no attr":            func(r *Request) { r.Resource.Attr = nil },
		"empty attr":         func(r *Request) { r.Resource.Attr = map[string]any{} },
		"attr value":         func(r *Request) { r.Resource.Attr["deploy_type"] = "create" },
		"attr key":           func(r *Request) { r.Resource.Attr["deploy_typ"] = r.Resource.Attr["deploy_type"] },
		"int as float":       func(r *Request) { r.Resource.Attr["requested"].(map[string]any)["servers"] = 2.0 },
		"int as int64":       func(r *Request) { r.Resource.Attr["requested"].(map[string]any)["servers"] = int64(2) },
		"int as json number": func(r *Request) { r.Resource.Attr["requested"].(map[string]any)["servers"] = json.Number("2") },
		"nested value":       func(r *Request) { r.Resource.Attr["requested"].(map[string]any)["servers"] = 3 },
		"array order":        func(r *Request) { r.Resource.Attr["tags"] = []any{true, "x", nil, 1.5} },
		"null as string":     func(r *Request) { r.Resource.Attr["tags"].([]any)[2] = "" },
		"bool":               func(r *Request) { r.Resource.Attr["tags"].([]any)[1] = false },
	}
	want, ok := keyOf(t, base())
	if !ok {
		t.Fatal("base request not encodable")
	}
	if again, _ := keyOf(t, base()); !bytes.Equal(again, want) {
		t.Fatal("the same request has two keys")
	}
	seen := map[string]string{string(want): "base"}
	for name, change := range variants {
		r := base()
		change(r)
		k, ok := keyOf(t, r)
		if !ok {
			t.Fatalf("%s: not encodable", name)
		}
		if other, dup := seen[string(k)]; dup {
			t.Errorf("%s has the key of %s", name, other)
		}
		seen[string(k)] = name
	}
	// One buffer encoding the requests in a row (as a batch does, reusing
	// the principal's encoding while it is the same) gives each its key.
	c := newDecisionCache(nil, 4, DefaultDecisionCacheMaxBytes)
	kb := c.bufs.Get().(*keyBuf)
	for k, name := range seen {
		for _, change := range variants {
			r := base()
			change(r)
			c.encode(kb, r) // a request before, of this or another principal
		}
		r := base()
		if name != "base" {
			variants[name](r)
		}
		if !c.encode(kb, r) || !bytes.Equal(kb.b, []byte(k)) {
			t.Errorf("%s: encoded after other requests, a key of its own", name)
		}
	}
}

// TestRequestKeyRefused: what the cache does not handle.
func TestRequestKeyRefused(t *testing.T) {
	deep := map[string]any{}
	m := deep
	for range maxAttrDepth + 1 {
		next := map[string]any{}
		m["x"] = next
		m = next
	}
	for name, attr := range map[string]map[string]any{
		"unsupported type": {"x": []string{"a"}},
		"too deep":         deep,
	} {
		if _, ok := keyOf(t, &Request{Action: "read", Resource: ResourceRef{Kind: "ui", Attr: attr}}); ok {
			t.Errorf("%s: encoded", name)
		}
	}
}

// FuzzRequestKey: a key decodes back to nothing the encoder did not see:
// two requests with equal keys decode to equal JSON.
func FuzzRequestKey(f *testing.F) {
	f.Add(`{"a":1}`, `{"a":1.0}`)
	f.Add(`{"a":[1,2]}`, `{"a":[2,1]}`)
	f.Add(`{"a":{"b":"c"}}`, `{"a":{"b":"c"}}`)
	f.Fuzz(func(t *testing.T, a, b string) {
		decode := func(s string) (map[string]any, bool) {
			var m map[string]any
			d := json.NewDecoder(bytes.NewReader([]byte(s)))
			d.UseNumber()
			return m, d.Decode(&m) == nil && m != nil
		}
		ma, okA := decode(a)
		mb, okB := decode(b)
		if !okA || !okB {
			return
		}
		ka, okA := keyOf(t, &Request{Action: "read", Resource: ResourceRef{Kind: "ui", Attr: ma}})
		kb, okB := keyOf(t, &Request{Action: "read", Resource: ResourceRef{Kind: "ui", Attr: mb}})
		if !okA || !okB || !bytes.Equal(ka, kb) {
			return
		}
		ja, _ := json.Marshal(ma)
		jb, _ := json.Marshal(mb)
		if !bytes.Equal(ja, jb) {
			t.Fatalf("equal keys for %s and %s", ja, jb)
		}
	})
}

// batchOf is a batch of the requests bits selects: for each of its bits up
// to n, principal a or b, acting as someone or not, with attr or with an
// attribute the cache does not handle.
func batchOf(a, b Principal, attr map[string]any, bits uint32, n int) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		r := Request{Principal: a, Action: "read", Resource: ResourceRef{Kind: "ui", ID: strconv.Itoa(i % 3), Attr: attr}}
		if bits>>(3*i)&1 != 0 {
			r.Principal = b
		}
		if bits>>(3*i+1)&1 != 0 {
			r.ActingAs = "u-other"
		}
		if bits>>(3*i+2)&1 != 0 {
			r.Resource.Attr = map[string]any{"x": []string{"unsupported"}}
		}
		reqs[i] = r
	}
	return reqs
}

// sameKeys fails unless encodeAll gives every request of reqs the key and
// hash encode gives it alone, and refuses the same ones.
func sameKeys(t *testing.T, reqs []Request) {
	t.Helper()
	c := newDecisionCache(fixedGens{}, 8, DefaultDecisionCacheMaxBytes)
	all := c.bufs.Get().(*keyBuf)
	keys := c.encodeAll(all, reqs)
	if len(all.members) != 0 {
		t.Fatalf("member stack not emptied: %v", all.members)
	}
	for i := range reqs {
		one := &keyBuf{}
		ok := c.encode(one, &reqs[i])
		k := keys[i]
		if k.ok != ok || ok && (!bytes.Equal(all.keys[k.start:k.end], one.b) || k.hash != one.hash) {
			t.Fatalf("request %d (%+v): batch key %q (%v), alone %q (%v)", i, reqs[i], all.keys[k.start:k.end], k.ok, one.b, ok)
		}
	}
}

// TestEncodeAll: a batch's keys, one after another, are each request's
// key: principals changing or not, acting_as, requests the cache refuses
// (an unsupported attribute, a key over MaxCachedRequestBytes) between
// others, and batches of one and of batchChunk.
func TestEncodeAll(t *testing.T) {
	u, v := Principal{ID: "u"}, Principal{Email: "v@example.com"}
	big := map[string]any{"s": strings.Repeat("x", MaxCachedRequestBytes)}
	nested := map[string]any{"a": []any{1.5, nil, true, map[string]any{"b": json.Number("2")}}}
	for _, bits := range []uint32{0, 0b001, 0b001_000_001, 0b100_010, 0b111_111_111, 0o1234567, math.MaxUint32} {
		for _, attr := range []map[string]any{nil, {}, nested, big} {
			for _, n := range []int{1, 3, 7} {
				sameKeys(t, batchOf(u, v, attr, bits, n))
			}
		}
	}
	sameKeys(t, slices.Repeat(batchOf(u, v, nested, 0o1234567, 7), batchChunk)[:batchChunk])
}

// FuzzEncodeAll holds encodeAll to encode: every request of a batch gets
// the key and hash it gets alone.
func FuzzEncodeAll(f *testing.F) {
	f.Add("u", "v", `{"a":1}`, uint32(0b001_010_100))
	f.Add("u", "u", `{"a":[1,{"b":null}]}`, uint32(math.MaxUint32))
	f.Add("", "v", `{}`, uint32(0o7070707))
	f.Fuzz(func(t *testing.T, a, b, attr string, bits uint32) {
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(attr))
		d.UseNumber()
		if d.Decode(&m) != nil {
			m = nil
		}
		sameKeys(t, batchOf(Principal{ID: a}, Principal{APIKey: b}, m, bits, 10))
	})
}

// collidingGens is a source whose slot 1 is at generation 2, every other
// at 1.
type collidingGens struct{}

func (collidingGens) FactSlot(string, string) uint32 { return 0 }
func (collidingGens) Generation(slot uint32) uint64 {
	if slot == 1 {
		return 2
	}
	return 1
}

// TestLookupAll: lookupAll finds for each key of a batch what lookup finds:
// nothing for a key never stored, an entry of another key with the same
// hash in the same bucket (a collision) skipped, the entry of the key
// behind it, and nothing for an entry whose facts changed.
func TestLookupAll(t *testing.T) {
	c := newDecisionCache(collidingGens{}, 64, DefaultDecisionCacheMaxBytes)
	d := &Decision{Allow: true, Reasons: []string{ReasonOwner}}
	req := func(id string) Request {
		return Request{Principal: Principal{ID: "u"}, Action: "read", Resource: ResourceRef{Kind: "ui", ID: id}}
	}
	reqs := []Request{req("stored"), req("never"), req("behind a collision"), req("stale"),
		{Action: "read", Resource: ResourceRef{Kind: "ui", Attr: map[string]any{"x": []string{"unsupported"}}}}}
	kb := c.bufs.Get().(*keyBuf)
	keys := c.encodeAll(kb, reqs)
	key := func(i int) []byte { return kb.keys[keys[i].start:keys[i].end] }
	c.store(key(0), keys[0].hash, d, []factGen{{0, 1}})
	c.store(key(0), keys[2].hash, d, nil) // another key, same hash: the first slot of the bucket
	c.store(key(2), keys[2].hash, d, []factGen{{0, 1}})
	c.store(key(3), keys[3].hash, d, []factGen{{0, 1}, {1, 1}})
	c.lookupAll(kb, keys)
	for i, want := range []bool{true, false, true, false, false} {
		if found := keys[i].found != nil; found != want {
			t.Errorf("request %d (%s): found %v, want %v", i, reqs[i].Resource.ID, found, want)
		}
		if keys[i].ok && keys[i].found != c.lookup(key(i), keys[i].hash) {
			t.Errorf("request %d (%s): lookupAll and lookup disagree", i, reqs[i].Resource.ID)
		}
	}
	if keys[2].found != nil && !bytes.Equal(keys[2].found.key, key(2)) {
		t.Errorf("the colliding entry was found")
	}
}

// fixedGens is a source whose facts never change.
type fixedGens struct{}

func (fixedGens) FactSlot(string, string) uint32 { return 0 }
func (fixedGens) Generation(uint32) uint64       { return 1 }

// TestDecisionCacheBounded: a small cache keeps at most its size, and a
// request stored twice takes one slot.
func TestDecisionCacheBounded(t *testing.T) {
	c := newDecisionCache(fixedGens{}, 8, DefaultDecisionCacheMaxBytes)
	if len(c.table) != 8 {
		t.Fatalf("table of %d slots, want 8", len(c.table))
	}
	d := &Decision{Allow: true, Reasons: []string{ReasonOwner}}
	kb := &keyBuf{}
	for i := range 100 {
		c.encode(kb, &Request{Principal: Principal{ID: "u"}, Action: "read", Resource: ResourceRef{Kind: "ui", ID: string(rune('a' + i%26))}})
		c.store(kb.b, kb.hash, d, []factGen{{0, 1}})
		c.store(kb.b, kb.hash, d, []factGen{{0, 1}})
		if c.lookup(kb.b, kb.hash) == nil {
			t.Fatalf("request %d not found right after it was stored", i)
		}
	}
	same := &Request{Principal: Principal{ID: "u"}, Action: "read", Resource: ResourceRef{Kind: "ui", ID: "same"}}
	c = newDecisionCache(fixedGens{}, 8, DefaultDecisionCacheMaxBytes)
	c.encode(kb, same)
	c.store(kb.b, kb.hash, d, nil)
	c.store(kb.b, kb.hash, d, nil)
	n := 0
	for i := range c.table {
		if c.table[i].Load() != nil {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("a request stored twice takes %d slots", n)
	}
}

// TestDecisionCacheDoorkeeper: a request offered once is not cached and
// offered again is; one whose entry went stale is cached again at once,
// though the doorkeeper forgot it; two requests asked in turn that share a
// doorkeeper slot are both cached; a request whose two slots others took
// meanwhile starts over.
func TestDecisionCacheDoorkeeper(t *testing.T) {
	gens := &countingGens{gen: 1}
	c := newDecisionCache(gens, 64, DefaultDecisionCacheMaxBytes)
	d := &Decision{Allow: true, Reasons: []string{ReasonOwner}}
	forget := func(hash uint64) { // other requests take both slots of hash
		a, b := c.seenSlots(hash)
		a.Store(hash + 1)
		b.Store(hash + 1)
	}
	kb := &keyBuf{}
	c.encode(kb, &Request{Principal: Principal{ID: "u"}, Action: "read", Resource: ResourceRef{Kind: "ui", ID: "once"}})
	c.offer(kb.b, kb.hash, d, []factGen{{0, 1}})
	if c.lookup(kb.b, kb.hash) != nil || c.used.Load() != accounted(c) {
		t.Fatal("a request decided once is cached")
	}
	c.offer(kb.b, kb.hash, d, []factGen{{0, 1}})
	if c.lookup(kb.b, kb.hash) == nil {
		t.Fatal("a request decided twice is not cached")
	}
	gens.gen = 2 // the fact changed: the entry is stale
	forget(kb.hash)
	if c.lookup(kb.b, kb.hash) != nil {
		t.Fatal("a stale entry is served")
	}
	c.offer(kb.b, kb.hash, d, []factGen{{0, 2}})
	if c.lookup(kb.b, kb.hash) == nil {
		t.Fatal("a request whose entry went stale is not cached again when decided again")
	}

	// Bits 32 on equal: the same first slot; buckets (low bits) apart.
	first, second := uint64(7)<<32|1, uint64(7)<<32|2
	slot1, other1 := c.seenSlots(first)
	slot2, other2 := c.seenSlots(second)
	if slot1 != slot2 || other1 == other2 {
		t.Fatal("the two hashes do not share exactly one slot")
	}
	for range 2 {
		c.offer([]byte("first"), first, d, nil)
		c.offer([]byte("second"), second, d, nil)
	}
	if !c.holds([]byte("first"), first) || !c.holds([]byte("second"), second) {
		t.Fatal("two requests asked in turn that share a doorkeeper slot are not both cached")
	}

	key, hash := []byte("third"), uint64(9)<<32|3
	c.offer(key, hash, d, nil)
	forget(hash)
	c.offer(key, hash, d, nil)
	if c.holds(key, hash) {
		t.Fatal("a request is admitted after its doorkeeper slots were taken")
	}
	c.offer(key, hash, d, nil)
	if !c.holds(key, hash) {
		t.Fatal("a request decided twice in a row is not admitted")
	}
}

// countingGens is a source whose one slot has generation gen.
type countingGens struct{ gen uint64 }

func (*countingGens) FactSlot(string, string) uint32 { return 0 }
func (g *countingGens) Generation(uint32) uint64     { return g.gen }

// accounted is the cost of the table and of every entry in it, counted
// afresh.
func accounted(c *decisionCache) int64 {
	n := int64(len(c.table)) * slotBytes
	for i := range c.table {
		n += c.table[i].Load().cost()
	}
	return n
}

// TestDecisionCacheByteBudget: distinct requests just under the size limit
// fill a small budget and never take the cache over it; the accounting
// matches what the table holds; a request over MaxCachedRequestBytes is
// never stored.
func TestDecisionCacheByteBudget(t *testing.T) {
	const budget = 256 << 10
	c := newDecisionCache(fixedGens{}, DefaultDecisionCacheSize, budget)
	d := &Decision{Allow: true, Reasons: []string{ReasonOwner}}
	kb := &keyBuf{}
	pad := string(bytes.Repeat([]byte("x"), MaxCachedRequestBytes-200))
	for i := range 2000 {
		req := &Request{Principal: Principal{ID: "u"}, Action: "read",
			Resource: ResourceRef{Kind: "ui", Attr: map[string]any{"n": i, "pad": pad}}}
		if !c.encode(kb, req) {
			t.Fatalf("request %d of %d bytes not cacheable", i, len(kb.b))
		}
		c.store(kb.b, kb.hash, d, []factGen{{0, 1}})
		if used := c.used.Load(); used > budget {
			t.Fatalf("after %d stores: %d bytes accounted, budget %d", i+1, used, budget)
		}
	}
	if used, counted := c.used.Load(), accounted(c); used != counted {
		t.Fatalf("%d bytes accounted, the table holds %d", used, counted)
	}
	if c.used.Load() < budget/2 {
		t.Errorf("only %d bytes of a %d budget used: the cache evicts too much", c.used.Load(), budget)
	}
	big := &Request{Principal: Principal{ID: "u"}, Action: "read",
		Resource: ResourceRef{Kind: "ui", Attr: map[string]any{"pad": pad + pad}}}
	if c.encode(kb, big) {
		t.Fatalf("a request of %d bytes is cacheable", len(kb.b))
	}
	// A budget too small for the table still gets a table of one bucket,
	// and stores nothing it cannot hold.
	tiny := newDecisionCache(fixedGens{}, DefaultDecisionCacheSize, 100)
	if len(tiny.table) != cacheWays {
		t.Fatalf("tiny budget: %d slots", len(tiny.table))
	}
	tiny.encode(kb, &Request{Principal: Principal{ID: "u"}, Action: "read", Resource: ResourceRef{Kind: "ui"}})
	tiny.store(kb.b, kb.hash, d, nil)
	if tiny.lookup(kb.b, kb.hash) != nil || tiny.used.Load() != accounted(tiny) {
		t.Fatalf("tiny budget stored an entry: %d bytes", tiny.used.Load())
	}
}

// TestMintIDs: ids written one after the other into chunks too small for
// many, the largest sequence numbers included, each stay what they were
// minted as when later ones need a new chunk.
func TestMintIDs(t *testing.T) {
	e := &Engine{idPrefix: "0a1b2c3d4e5f-"}
	c := &idChunk{buf: make([]byte, 0, 3*len(e.idPrefix))}
	var ids, want []string
	for i := range 300 {
		ids = append(ids, c.mint(e))
		want = append(want, e.idPrefix+strconv.FormatUint(uint64(i+1), 36))
	}
	c.next, c.end = math.MaxUint64-3, math.MaxUint64
	for i := range 3 {
		ids = append(ids, c.mint(e))
		want = append(want, e.idPrefix+strconv.FormatUint(math.MaxUint64-3+uint64(i), 36))
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("ids %q,\nwant %q", ids, want)
	}
}

// TestAppendBase36 holds appendBase36 to strconv's base 36.
func TestAppendBase36(t *testing.T) {
	ns := []uint64{0, 1, 35, 36, 37, 36*36 - 1, 36 * 36, math.MaxUint32, math.MaxUint64 - 1, math.MaxUint64}
	for i := range 1000 {
		ns = append(ns, rand.Uint64()>>(i%64))
	}
	for _, n := range ns {
		if got, want := string(appendBase36([]byte("x"), n)), "x"+strconv.FormatUint(n, 36); got != want {
			t.Errorf("%d: %s, want %s", n, got, want)
		}
	}
}
