package pdp

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// The documents below are the facts the decision point reads. Field names are
// the same in Redis (JSON), in the YAML state file and here
// (docs/redis.md, "The documents"). Every field is optional unless noted.

// User is a person or machine that asks for decisions.
type User struct {
	ID               string           `json:"id" yaml:"id"` // required
	Email            string           `json:"email,omitempty" yaml:"email,omitempty"`
	Account          string           `json:"account,omitempty" yaml:"account,omitempty"`
	Role             string           `json:"role,omitempty" yaml:"role,omitempty"` // default RoleUser
	Billable         bool             `json:"billable,omitempty" yaml:"billable,omitempty"`
	Blocked          bool             `json:"blocked,omitempty" yaml:"blocked,omitempty"`
	Archived         bool             `json:"archived,omitempty" yaml:"archived,omitempty"`
	SuspendReasons   []string         `json:"suspend_reasons,omitempty" yaml:"suspend_reasons,omitempty"`
	AccountDelegates []string         `json:"account_delegates,omitempty" yaml:"account_delegates,omitempty"`
	Limits           map[string]int64 `json:"limits,omitempty" yaml:"limits,omitempty"`
	Usage            map[string]int64 `json:"usage,omitempty" yaml:"usage,omitempty"`
	CredentialAccess []string         `json:"credential_access,omitempty" yaml:"credential_access,omitempty"`
}

// RoleName is the user's role, RoleUser when none is set.
func (u *User) RoleName() string {
	if u.Role == "" {
		return RoleUser
	}
	return u.Role
}

// Suspended reports whether the user has at least one suspend reason.
func (u *User) Suspended() bool { return len(u.SuspendReasons) > 0 }

// Account is a company: billing flag and default limits for its users.
type Account struct {
	ID       string           `json:"id" yaml:"id"` // required
	Name     string           `json:"name,omitempty" yaml:"name,omitempty"`
	Billable bool             `json:"billable,omitempty" yaml:"billable,omitempty"`
	Limits   map[string]int64 `json:"limits,omitempty" yaml:"limits,omitempty"`
}

// Built-in role names. They cannot be stored as custom roles.
const (
	RoleRoot       = "root"
	RoleFullAdmin  = "full_admin"
	RoleBasicAdmin = "basic_admin"
	RoleUser       = "user"
)

// IsBuiltinRole reports whether name is one of the four built-in roles.
func IsBuiltinRole(name string) bool {
	switch name {
	case RoleRoot, RoleFullAdmin, RoleBasicAdmin, RoleUser:
		return true
	}
	return false
}

// Role is a custom role: named permissions and ABAC rules.
type Role struct {
	Name        string   `json:"name" yaml:"name"` // required
	Permissions []string `json:"permissions,omitempty" yaml:"permissions,omitempty"`
	Rules       []Rule   `json:"rules,omitempty" yaml:"rules,omitempty"`
}

// Rule is an ABAC rule of a custom role (MetalSoft 7.0).
type Rule struct {
	Subject    string         `json:"subject" yaml:"subject"` // a kind or "all"
	Actions    []string       `json:"actions" yaml:"actions"` // actions, "manage" for any
	Fields     []string       `json:"fields,omitempty" yaml:"fields,omitempty"`
	Conditions map[string]any `json:"conditions,omitempty" yaml:"conditions,omitempty"` // MongoDB-style query over resource attributes
	Inverted   bool           `json:"inverted,omitempty" yaml:"inverted,omitempty"`     // a "cannot" rule
}

// Infrastructure is a set of deployed resources owned by one user and shared
// with infrastructure delegates.
type Infrastructure struct {
	ID        string         `json:"id" yaml:"id"`       // required
	Owner     string         `json:"owner" yaml:"owner"` // required: a user id
	Delegates []string       `json:"delegates,omitempty" yaml:"delegates,omitempty"`
	Label     string         `json:"label,omitempty" yaml:"label,omitempty"`
	Attr      map[string]any `json:"-" yaml:",inline"` // every other attribute (status, ...)
}

// Resource is an owned resource other than an infrastructure: an OS
// template, a workflow, a secret.
type Resource struct {
	Kind       string         `json:"kind" yaml:"kind"` // required
	ID         string         `json:"id" yaml:"id"`     // required
	Owner      string         `json:"owner,omitempty" yaml:"owner,omitempty"`
	Visibility string         `json:"visibility,omitempty" yaml:"visibility,omitempty"` // "private" (default) or "public"
	Attr       map[string]any `json:"-" yaml:",inline"`                                 // every other attribute
}

// Global holds the system-wide flags and default limits.
type Global struct {
	Maintenance      bool             `json:"maintenance,omitempty" yaml:"maintenance,omitempty"`
	AdminMaintenance bool             `json:"admin_maintenance,omitempty" yaml:"admin_maintenance,omitempty"`
	Limits           map[string]int64 `json:"limits,omitempty" yaml:"limits,omitempty"`
}

// APIKey maps an API key to a user. Exactly one of Key (the clear key, only
// in a state file) and SHA256 (hex digest of the key) is set.
type APIKey struct {
	Key    string `json:"key,omitempty" yaml:"key,omitempty"`
	SHA256 string `json:"sha256,omitempty" yaml:"sha256,omitempty"`
	User   string `json:"user" yaml:"user"`
}

// Digest is the digest that identifies k (see APIKeyDigest): of Key when
// set, else SHA256 in lower case.
func (k APIKey) Digest() string {
	if k.Key != "" {
		return APIKeyDigest(k.Key)
	}
	return strings.ToLower(k.SHA256)
}

// APIKeyDigest is the lower-case hex SHA-256 of an API key: the only form in
// which keys are stored and looked up (Facts.UserByAPIKey).
func APIKeyDigest(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// State is a whole set of facts: the layout of the YAML state file, and what
// an import writes into Redis or an export reads from it.
type State struct {
	Accounts        []Account        `json:"accounts,omitempty" yaml:"accounts,omitempty"`
	Users           []User           `json:"users,omitempty" yaml:"users,omitempty"`
	Roles           []Role           `json:"roles,omitempty" yaml:"roles,omitempty"`
	Infrastructures []Infrastructure `json:"infrastructures,omitempty" yaml:"infrastructures,omitempty"`
	Resources       []Resource       `json:"resources,omitempty" yaml:"resources,omitempty"`
	APIKeys         []APIKey         `json:"api_keys,omitempty" yaml:"api_keys,omitempty"`
	Global          Global           `json:"global" yaml:"global,omitempty"`
}
