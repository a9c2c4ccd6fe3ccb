package redisstate

import (
	"fmt"
	"runtime"
	"testing"
)

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestCacheHeapWithinBudget: a facts cache filled far beyond its budget with
// documents of every kind holds no more heap than the budget (and its fixed
// tables): the cost of an entry is what it holds in memory, not the length
// of its JSON.
func TestCacheHeapWithinBudget(t *testing.T) {
	const budget = 4 << 20
	docs := []struct{ kind, format string }{
		{KindUser, `{"id":%q,"account":"acct","email":"someone@example.com","usage":{"servers":3,"drives":12},"limits":{"servers":10}}`},
		{KindInfra, `{"id":%q,"owner":"u-1","delegates":["u-2","u-3"],"label":"production","status":"active","tags":["a","b"],"site":{"region":"eu","rack":7}}`},
		{KindResource, `{"kind":"secret","id":%q,"owner":"u-1","visibility":"private","name":"db password","rotated":true}`},
		{KindRole, `{"name":%q,"permissions":["servers_read","servers_write"],"rules":[{"subject":"server","actions":["read","update"],"conditions":{"status":{"$in":["active","ordered"]},"site":"eu"}}]}`},
	}
	base := liveHeap()
	c, err := newCache(budget)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	empty := liveHeap()
	for i := range 12_000 {
		d := docs[i%len(docs)]
		name := fmt.Sprintf("doc-%d", i)
		id := name
		if d.kind == KindResource {
			id = "secret:" + name
		}
		val, err := decodeDoc(d.kind, id, fmt.Sprintf(d.format, name))
		if err != nil {
			t.Fatal(err)
		}
		key := Ref{d.kind, id}.cacheKey()
		c.put(key, c.gen.newEntry(0, val, nil, key), docBytes(val))
	}
	c.rc.Wait()
	for i := range c.recent { // at most recentSlots entries, bounded apart: measured is what ristretto holds
		c.recent[i].Store(nil)
	}
	filled := liveHeap()
	held := c.rc.Metrics.KeysAdded() - c.rc.Metrics.KeysEvicted()
	t.Logf("fixed tables %d KiB; %d entries hold %d KiB of heap for a budget of %d KiB",
		(empty-base)>>10, held, (filled-empty)>>10, budget>>10)
	if held < 1000 {
		t.Fatalf("only %d entries held: the test does not fill the cache", held)
	}
	if grown := filled - empty; grown > budget*11/10 {
		t.Errorf("the entries hold %d KiB of heap, over the budget of %d KiB by more than 10%%", grown>>10, budget>>10)
	}
}
