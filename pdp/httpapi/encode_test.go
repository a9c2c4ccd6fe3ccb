package httpapi

import (
	"encoding/json"
	"testing"
)

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "owner", `a"b\c`, "line\nbreak\t\x00\x1f", "ünïcode ✓", "bad \xff utf8", "</script>"} {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("appendString(%q) = %s: %v", s, got, err)
			continue
		}
		if want, _ := json.Marshal(s); back != s && string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, round trip %q", s, got, back)
		}
	}
}
