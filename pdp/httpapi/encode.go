package httpapi

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/metalsoft-io/pdp/pdp"
)

const contentJSON = "application/json"

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		q, _ := json.Marshal(s) // replaces invalid bytes with U+FFFD
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

// appendReasons appends the reasons as a JSON array, [] when there are none.
func appendReasons(b []byte, reasons []string) []byte {
	b = append(b, '[')
	for i, r := range reasons {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, r)
	}
	return append(b, ']')
}

// appendResult appends {"allow", "reasons"} and, if set, "explain", without
// the closing brace.
func appendResult(b []byte, d *pdp.Decision) []byte {
	if d.Allow {
		b = append(b, `{"allow":true,"reasons":`...)
	} else {
		b = append(b, `{"allow":false,"reasons":`...)
	}
	b = appendReasons(b, d.Reasons)
	if d.Explain != nil {
		b = append(b, `,"explain":`...)
		ex, err := json.Marshal(d.Explain)
		if err != nil {
			ex, _ = json.Marshal(map[string]string{"error": "explanation not encodable: " + err.Error()})
		}
		b = append(b, ex...)
	}
	return b
}

// appendIDs appends the decision id and revision members.
func appendIDs(b []byte, decisionID, revision string) []byte {
	b = append(b, `,"decision_id":`...)
	b = appendString(b, decisionID)
	b = append(b, `,"revision":`...)
	return appendString(b, revision)
}

// appendDecision appends the answer to a check.
func appendDecision(b []byte, d *pdp.Decision) []byte {
	b = appendResult(b, d)
	b = appendIDs(b, d.DecisionID, d.Revision)
	return append(b, "}\n"...)
}
