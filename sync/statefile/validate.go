package statefile

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/policy/conditions"
	"go.yaml.in/yaml/v3"
)

// Warning is a problem in a state file that does not reject it (docs/redis.md
// "Validation"): the decision point handles the same at decision time, for
// example by denying role_invalid or unknown_resource, so a file and Redis
// holding the same documents behave the same.
type Warning struct {
	Line    int    // line of the document in the file, 0 when unknown
	Item    string // the document, e.g. `roles[0] "support"`
	Message string

	section string // where the document is: state file section and index
	index   int
}

// String formats w as "line N: item: message".
func (w Warning) String() string {
	if w.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", w.Line, w.Item, w.Message)
	}
	return w.Item + ": " + w.Message
}

// Load parses data strictly (see Parse) and validates the result. A
// structural error rejects the file; the warnings do not.
func Load(data []byte) (*pdp.State, []Warning, error) {
	s, err := Parse(data)
	if err != nil {
		return nil, nil, err
	}
	ws := Validate(s)
	if len(ws) > 0 {
		var root yaml.Node
		// Parse succeeded, so the document is well-formed.
		if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err == nil {
			for i := range ws {
				if n := sequenceItem(&root, ws[i].section, ws[i].index); n != nil {
					ws[i].Line = n.Line
				}
			}
		}
	}
	return s, ws, nil
}

// Validate reports the references to documents that do not exist, the
// duplicate ids, and the roles that the policy will find invalid (unknown
// permission, subject or action names, conditions that do not compile) in
// s. Lines are left zero.
func Validate(s *pdp.State) []Warning {
	v := validator{
		users:    make(map[string]bool, len(s.Users)),
		accounts: make(map[string]bool, len(s.Accounts)),
		roles:    make(map[string]bool, len(s.Roles)),
	}
	v.indexes(s)
	v.checkUsers(s)
	v.checkRoles(s)
	v.checkInfrastructures(s)
	v.checkResources(s)
	v.checkAPIKeys(s)
	return v.out
}

type validator struct {
	users, accounts, roles map[string]bool
	out                    []Warning
}

// warn records a warning about the i-th document of a section, named by id
// (an empty id is not shown).
func (v *validator) warn(section string, i int, id, format string, args ...any) {
	it := fmt.Sprintf("%s[%d]", section, i)
	if id != "" {
		it += fmt.Sprintf(" %q", id)
	}
	v.out = append(v.out, Warning{Item: it, Message: fmt.Sprintf(format, args...), section: section, index: i})
}

// indexes records the ids of users, accounts and roles, warning about duplicates.
func (v *validator) indexes(s *pdp.State) {
	for i, a := range s.Accounts {
		v.unique(v.accounts, "accounts", i, a.ID, "account")
	}
	emails := make(map[string]bool, len(s.Users))
	for i, u := range s.Users {
		v.unique(v.users, "users", i, u.ID, "user")
		if u.Email == "" {
			continue
		}
		if e := pdp.FoldEmail(u.Email); emails[e] {
			v.warn("users", i, u.ID, "duplicate email %q: only the last user with it is found by email", u.Email)
		} else {
			emails[e] = true
		}
	}
	for i, r := range s.Roles {
		v.unique(v.roles, "roles", i, r.Name, "role")
	}
}

// unique adds id to seen, warning when it is already there.
func (v *validator) unique(seen map[string]bool, section string, i int, id, what string) {
	if seen[id] {
		v.warn(section, i, id, "duplicate %s id %q: the last one wins", what, id)
	}
	seen[id] = true
}

func (v *validator) checkUsers(s *pdp.State) {
	for i, u := range s.Users {
		if u.Account != "" && !v.accounts[u.Account] {
			v.warn("users", i, u.ID, "unknown account %q", u.Account)
		}
		if r := u.RoleName(); !pdp.IsBuiltinRole(r) && !v.roles[r] {
			v.warn("users", i, u.ID, "unknown role %q: the user will be denied role_invalid", r)
		}
		for _, d := range u.AccountDelegates {
			if !v.users[d] {
				v.warn("users", i, u.ID, "unknown account delegate %q", d)
			}
		}
	}
}

func (v *validator) checkRoles(s *pdp.State) {
	for i, r := range s.Roles {
		for _, p := range r.Permissions {
			if permissionIndex[p] == permissionDeprecated {
				v.warn("roles", i, r.Name, "deprecated permission %q grants nothing", p)
			}
		}
		for _, p := range RoleProblems(&r) {
			v.warn("roles", i, r.Name, "%s: the role is invalid (role_invalid)", p)
		}
	}
}

// RoleProblems lists what makes a custom role invalid for the policy (its
// holders are denied role_invalid), each naming the path of the bad value
// inside the role: unknown permissions, rule subjects and actions, and rule
// conditions that conditions.Compile refuses (an unknown operator, a stray
// "${", a placeholder naming no user field). The file and Redis sources
// report the same problems.
func RoleProblems(r *pdp.Role) []string {
	var out []string
	for _, p := range r.Permissions {
		if permissionIndex[p] == permissionUnknown {
			out = append(out, fmt.Sprintf("unknown permission %q", p))
		}
	}
	for j, rule := range r.Rules {
		if rule.Subject != "all" && !pdp.IsKind(rule.Subject) {
			out = append(out, fmt.Sprintf("rules[%d]: unknown subject %q", j, rule.Subject))
		}
		for _, a := range rule.Actions {
			if a != "manage" && a != "all" && !pdp.IsAction(a) {
				out = append(out, fmt.Sprintf("rules[%d]: unknown action %q", j, a))
			}
		}
		if _, err := conditions.Compile(rule.Conditions); err != nil {
			out = append(out, fmt.Sprintf("rules[%d]: %v", j, err))
		}
	}
	return out
}

func (v *validator) checkInfrastructures(s *pdp.State) {
	seen := make(map[string]bool, len(s.Infrastructures))
	for i, in := range s.Infrastructures {
		v.unique(seen, "infrastructures", i, in.ID, "infrastructure")
		if !v.users[in.Owner] {
			v.warn("infrastructures", i, in.ID, "unknown owner %q", in.Owner)
		}
		for _, d := range in.Delegates {
			if !v.users[d] {
				v.warn("infrastructures", i, in.ID, "unknown delegate %q", d)
			}
		}
	}
}

func (v *validator) checkResources(s *pdp.State) {
	seen := make(map[string]bool, len(s.Resources))
	for i, r := range s.Resources {
		v.unique(seen, "resources", i, r.Kind+":"+r.ID, "resource")
		if !pdp.IsKind(r.Kind) {
			v.warn("resources", i, r.Kind+":"+r.ID, "unknown kind %q: no request can name it", r.Kind)
		}
		if r.Owner != "" && !v.users[r.Owner] {
			v.warn("resources", i, r.Kind+":"+r.ID, "unknown owner %q", r.Owner)
		}
		if r.Visibility != "" && r.Visibility != "private" && r.Visibility != "public" {
			v.warn("resources", i, r.Kind+":"+r.ID, "visibility %q is neither \"private\" nor \"public\"", r.Visibility)
		}
	}
}

func (v *validator) checkAPIKeys(s *pdp.State) {
	seen := make(map[string]bool, len(s.APIKeys))
	for i, k := range s.APIKeys {
		// The id is left out: never put a key into a message.
		d := k.Digest()
		if seen[d] {
			v.warn("api_keys", i, "", "duplicate API key: the last one wins")
		}
		seen[d] = true
		if k.SHA256 != "" && !isSHA256Hex(k.SHA256) {
			v.warn("api_keys", i, "", "sha256 is not 64 hexadecimal digits: no key will match it")
		}
		if !v.users[k.User] {
			v.warn("api_keys", i, "", "unknown user %q: the key resolves to nobody", k.User)
		}
	}
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
