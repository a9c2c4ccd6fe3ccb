package jsontext

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// byteByByte is AppendString as it was written first, one byte at a time:
// the answers must not change by a byte.
func byteByByte(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		q, _ := json.Marshal(s)
		return append(b, q...)
	}
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

var samples = []string{
	"", "a", "account_delegate", `"`, `\`, `a"b\c`, "\x00\x1f\n\t", "ü<>&\u2028", "\xff", "a\xffb\"",
	`""\\`, "end\"", "\"start", "x\ny",
}

func TestAppendString(t *testing.T) {
	for _, s := range samples {
		if got, want := AppendString([]byte("p"), s), byteByByte([]byte("p"), s); !bytes.Equal(got, want) {
			t.Errorf("%q: %s, want %s", s, got, want)
		}
		var back string
		if err := json.Unmarshal(AppendString(nil, s), &back); err != nil || (utf8.ValidString(s) && back != s) {
			t.Errorf("%q does not read back: %q %v", s, back, err)
		}
	}
}

// FuzzAppendString holds AppendString to its byte-by-byte form.
func FuzzAppendString(f *testing.F) {
	for _, s := range samples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := AppendString(nil, s), byteByByte(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: %s, want %s", s, got, want)
		}
	})
}
