package statefile

import (
	"context"
	"strings"

	"github.com/metalsoft-io/pdp/pdp"
)

// Facts is an immutable, indexed view of a pdp.State. It implements
// pdp.Facts without ever failing.
type Facts struct {
	users    map[string]*pdp.User
	emails   map[string]*pdp.User
	apiKeys  map[string]*pdp.User
	accounts map[string]*pdp.Account
	roles    map[string]*pdp.Role
	infras   map[string]*pdp.Infrastructure
	res      map[string]*pdp.Resource // by kind + ":" + id
	global   *pdp.Global
	revision string
}

var _ pdp.Facts = (*Facts)(nil)

// NewFacts indexes s. The revision is reported with every decision. Later
// documents with the same key replace earlier ones; API keys naming a user
// that does not exist resolve to nothing.
func NewFacts(s *pdp.State, revision string) *Facts {
	f := &Facts{
		users:    make(map[string]*pdp.User, len(s.Users)),
		emails:   make(map[string]*pdp.User, len(s.Users)),
		apiKeys:  make(map[string]*pdp.User, len(s.APIKeys)),
		accounts: make(map[string]*pdp.Account, len(s.Accounts)),
		roles:    make(map[string]*pdp.Role, len(s.Roles)),
		infras:   make(map[string]*pdp.Infrastructure, len(s.Infrastructures)),
		res:      make(map[string]*pdp.Resource, len(s.Resources)),
		global:   &s.Global,
		revision: revision,
	}
	for i := range s.Users {
		u := &s.Users[i]
		f.users[u.ID] = u
		if u.Email != "" {
			f.emails[pdp.FoldEmail(u.Email)] = u
		}
	}
	for i := range s.APIKeys {
		k := s.APIKeys[i]
		if u, ok := f.users[k.User]; ok {
			f.apiKeys[k.Digest()] = u
		} else {
			delete(f.apiKeys, k.Digest()) // the last entry wins, even naming nobody
		}
	}
	for i := range s.Accounts {
		f.accounts[s.Accounts[i].ID] = &s.Accounts[i]
	}
	for i := range s.Roles {
		f.roles[s.Roles[i].Name] = &s.Roles[i]
	}
	for i := range s.Infrastructures {
		f.infras[s.Infrastructures[i].ID] = &s.Infrastructures[i]
	}
	for i := range s.Resources {
		r := &s.Resources[i]
		f.res[r.Kind+":"+r.ID] = r
	}
	return f
}

// User implements pdp.Facts.
func (f *Facts) User(_ context.Context, id string) (*pdp.User, error) { return f.users[id], nil }

// UserByEmail implements pdp.Facts.
func (f *Facts) UserByEmail(_ context.Context, email string) (*pdp.User, error) {
	return f.emails[pdp.FoldEmail(email)], nil
}

// UserByAPIKey implements pdp.Facts.
func (f *Facts) UserByAPIKey(_ context.Context, sha256hex string) (*pdp.User, error) {
	return f.apiKeys[strings.ToLower(sha256hex)], nil
}

// Account implements pdp.Facts.
func (f *Facts) Account(_ context.Context, id string) (*pdp.Account, error) {
	return f.accounts[id], nil
}

// Role implements pdp.Facts.
func (f *Facts) Role(_ context.Context, name string) (*pdp.Role, error) { return f.roles[name], nil }

// Infrastructure implements pdp.Facts.
func (f *Facts) Infrastructure(_ context.Context, id string) (*pdp.Infrastructure, error) {
	return f.infras[id], nil
}

// Resource implements pdp.Facts.
func (f *Facts) Resource(_ context.Context, kind, id string) (*pdp.Resource, error) {
	return f.res[kind+":"+id], nil
}

// Global implements pdp.Facts.
func (f *Facts) Global(context.Context) (*pdp.Global, error) { return f.global, nil }

// Revision implements pdp.Facts.
func (f *Facts) Revision() string { return f.revision }
