package httpapi

import (
	"encoding/json"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/internal/jsontext"
)

const contentJSON = "application/json"

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte { return jsontext.AppendString(b, s) }

// appendReasons appends the reasons as a JSON array, [] when there are none.
func appendReasons(b []byte, reasons []string) []byte { return jsontext.AppendStrings(b, reasons) }

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
