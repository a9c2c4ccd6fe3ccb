package statefile

import (
	"os"
	"strings"
	"testing"
)

func TestLoadWarnings(t *testing.T) {
	data, err := os.ReadFile("testdata/warnings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, ws, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`line 4: accounts[1] "acme": duplicate account id "acme": the last one wins`,
		`line 7: users[1] "u-b": duplicate email "a@example.com": only the last user with it is found by email`,
		`line 8: users[2] "u-a": duplicate user id "u-a": the last one wins`,
		`line 6: users[0] "u-a": unknown account "nowhere"`,
		`line 6: users[0] "u-a": unknown account delegate "u-ghost"`,
		`line 7: users[1] "u-b": unknown role "auditor": the user will be denied role_invalid`,
		`line 10: roles[0] "odd": deprecated permission "cluster_read" grants nothing`,
		`line 10: roles[0] "odd": unknown permission "servers_fly": the role is invalid (role_invalid)`,
		`line 10: roles[0] "odd": rules[0]: unknown subject "spaceship": the role is invalid (role_invalid)`,
		`line 10: roles[0] "odd": rules[1]: unknown action "launch": the role is invalid (role_invalid)`,
		`line 10: roles[0] "odd": rules[2]: conditions: field "status": unknown operator "$within": the role is invalid (role_invalid)`,
		`line 10: roles[0] "odd": rules[4]: conditions: $or[1]: field "name": $regex: placeholder "${principal.nick}" names no user field (id, email, account, role, billable, blocked, archived, suspend_reasons, account_delegates, limits, usage, credential_access): the role is invalid (role_invalid)`,
		`line 10: roles[0] "odd": rules[5]: conditions: field "name": malformed placeholder "web-${principal.id}": want exactly "${principal.<field>}": the role is invalid (role_invalid)`,
		`line 20: infrastructures[0] "inf-a": unknown owner "u-nobody"`,
		`line 20: infrastructures[0] "inf-a": unknown delegate "u-ghost"`,
		`line 21: infrastructures[1] "inf-a": duplicate infrastructure id "inf-a": the last one wins`,
		`line 23: resources[0] "template:t": unknown owner "u-ghost"`,
		`line 23: resources[0] "template:t": visibility "secret" is neither "private" nor "public"`,
		`line 24: resources[1] "gadget:g": unknown kind "gadget": no request can name it`,
		`line 27: api_keys[1]: duplicate API key: the last one wins`,
		`line 27: api_keys[1]: unknown user "u-ghost": the key resolves to nobody`,
		`line 28: api_keys[2]: sha256 is not 64 hexadecimal digits: no key will match it`,
	}
	var got []string
	for _, w := range ws {
		got = append(got, w.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range ws {
		if strings.Contains(w.String(), "k1") {
			t.Errorf("a warning shows an API key: %s", w)
		}
	}
}

func TestExampleHasNoWarnings(t *testing.T) {
	data, err := os.ReadFile("../../examples/metalcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, ws, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		t.Errorf("warning: %s", w)
	}
}
