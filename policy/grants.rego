# Step 6 (grants by resource kind), the unknown_resource check before it,
# and step 7 (guards on a granted request).
package metalsoft.authz

# grants are the reasons of every grant that applies.

# Infrastructures (docs/model.md "Infrastructures").
grants contains r if {
	input.resource.kind == "infrastructure"
	some r in user_infra_rights(input.facts.infrastructures[resource_id], input.action)
}

grants contains r if {
	input.resource.kind == "infrastructure"
	input.action == "create"
	some r in owner_rights(subject_user_id)
}

grants contains "self" if infra_listing

# Reservations and utilization reports: owner rights on the user they
# belong to.
grants contains r if {
	input.resource.kind == "reservation"
	input.action in {"read", "list", "create", "update", "delete"}
	some r in owner_rights(subject_user_id)
}

grants contains r if {
	input.resource.kind == "utilization_report"
	input.action in {"read", "list"}
	some r in owner_rights(subject_user_id)
}

# Billing: the user itself only; an account delegate reaches it by
# impersonation.
grants contains "self" if {
	input.resource.kind == "billing"
	input.action in {"read", "pay", "update"}
	subject_user_id == effective.id
}

# Credentials are read and listed, never changed: an instance's through
# rights on its infrastructure, the equipment's through credential_access or
# root.
credential_read if {
	input.resource.kind == "credential"
	input.action in {"read", "list"}
}

grants contains r if {
	credential_read
	attr.scope == "instance"
	some r in user_infra_rights(input.facts.infrastructures[attr.infrastructure], input.action)
}

grants contains "role_permission" if {
	credential_read
	attr.scope != "instance"
	attr.scope in object.get(effective, "credential_access", [])
}

grants contains "role_permission" if {
	credential_read
	object.get(attr, "scope", "") != "instance"
	effective.role == "root"
}

# Users: read themselves and manage their own account sharing; update,
# block, unblock, archive and unarchive by root and full_admin only. Nobody
# deletes a user (seed: "Users cannot be deleted for security reasons").
grants contains "self" if {
	input.resource.kind == "user"
	input.action in {"read", "share", "unshare"}
	subject_user_id == effective.id
}

grants contains "role_permission" if {
	input.resource.kind == "user"
	input.action in {"update", "block", "unblock", "archive", "unarchive"}
	effective.role in {"root", "full_admin"}
}

# Secrets: the value is read, and a secret created, updated or deleted, by
# its owner or root only (variables_and_secrets_write covers variables). A
# new secret's owner is attr owner, default the effective principal.
secret_owner_actions := {"read", "create", "update", "delete"}

grants contains "owner" if {
	input.resource.kind == "secret"
	input.action in secret_owner_actions
	object.get(attr, "owner", default_secret_owner) == effective.id
}

grants contains "role_permission" if {
	input.resource.kind == "secret"
	input.action in secret_owner_actions
	effective.role == "root"
}

# default_secret_owner: only a new secret defaults to its creator.
default_secret_owner := effective.id if input.action == "create"

else := null

# The user interface and the API are open to every principal past step 2.
grants contains "self" if {
	input.resource.kind in {"ui", "api"}
	input.action == "access"
}

# Admin permissions (the RBAC table, admin.rego).
grants contains "role_permission" if has_permission(required_permission)

# ABAC rules (rules.rego).
grants contains "rule" if {
	rule_may_grant
	some r in rules
	not r.inverted
	rule_matches(r)
	fields_allowed(r)
}

# Rights on users and infrastructures.

# owner_rights are the effective principal's owner rights on user x: x
# itself, or an account delegate of x (not transitive).
owner_rights(x) := {"owner"} if {
	x == effective.id
} else := {"account_delegate"} if {
	effective.id in input.facts.users[x].account_delegates
} else := set()

# infra_rights_class groups the actions of docs/model.md's infrastructure table.
infra_rights_class := {
	"read": "use", "list": "use", "update": "use", "deploy": "use", "delete": "use", "console": "use",
	"share": "share", "unshare": "share",
}

# user_infra_rights are the owner and delegate rights (not admin ones) on
# infrastructure inf for action.
user_infra_rights(inf, action) := owner_rights(inf.owner) | delegate_rights if {
	infra_rights_class[action] == "use"
	delegate_rights := {"infrastructure_delegate" | effective.id in inf.delegates}
} else := owner_rights(inf.owner) if {
	infra_rights_class[action] == "share"
} else := set()

# infra_listing is a list of infrastructures without an id: which ones the
# principal sees is the lookup endpoint's answer.
infra_listing if {
	input.resource.kind == "infrastructure"
	input.action == "list"
	resource_id == ""
}

# subject_user_id is the user a request is about: the id of a billing,
# utilization report or user request (billing and reports default to the
# effective principal), the owner of a reservation or of a new
# infrastructure (default the effective principal).
subject_user_id := resource_id if {
	input.resource.kind in {"billing", "utilization_report", "user"}
	resource_id != ""
} else := effective.id if {
	input.resource.kind in {"billing", "utilization_report"}
} else := object.get(attr, "owner", effective.id) if {
	input.resource.kind == "reservation"
} else := object.get(attr, "owner", effective.id) if {
	input.resource.kind == "infrastructure"
	input.action == "create"
}

# unknown_resource: a named infrastructure or user that is not stored.
unknown_resource if {
	input.resource.kind == "infrastructure"
	input.action != "create"
	not infra_listing
	not input.facts.infrastructures[resource_id]
}

unknown_resource if {
	input.resource.kind == "credential"
	attr.scope == "instance"
	not input.facts.infrastructures[object.get(attr, "infrastructure", "")]
}

unknown_resource if {
	id := subject_user_id
	not input.facts.users[id]
}

# Step 7: guards.

# deploy_type of a deploy; anything but "delete" is guarded as create/edit.
deploy_type := object.get(attr, "deploy_type", "edit")

deploying if {
	input.resource.kind == "infrastructure"
	input.action == "deploy"
}

infra_owner := input.facts.users[input.facts.infrastructures[resource_id].owner]

owner_account := input.facts.accounts[infra_owner.account]

guard_denials contains "not_billable" if {
	deploying
	not billable
}

guard_denials contains "principal_suspended" if {
	deploying
	deploy_type != "delete"
	suspended(effective)
}

guard_denials contains "owner_suspended" if {
	deploying
	deploy_type != "delete"
	infra_owner.id != effective.id
	suspended(infra_owner)
}

# requested are a deploy's amounts: an object of non-negative numbers. Any
# other value denies, whatever the limit: a caller passing a client's value
# through cannot skip the check.
requested := object.get(attr, "requested", {})

guard_denials contains "limit_exceeded" if {
	deploying
	not is_object(requested)
}

guard_denials contains "limit_exceeded" if {
	deploying
	is_object(requested)
	some name, n in requested
	not within_limit(name, n)
}

guard_denials contains "principal_suspended" if {
	input.resource.kind == "reservation"
	input.action == "create"
	suspended(effective)
}

# A delegate cannot reserve around the owner's suspension (as for deploys).
guard_denials contains "owner_suspended" if {
	input.resource.kind == "reservation"
	input.action == "create"
	owner := input.facts.users[subject_user_id]
	owner.id != effective.id
	suspended(owner)
}

guard_denials contains "not_visible" if {
	input.resource.kind in {"template", "workflow"}
	resource_id != ""
	input.action != "create"
	not visible
}

billable if infra_owner.billable == true

billable if owner_account.billable == true

# within_limit: n more of the named limit fit; unlimited when no level sets
# a limit. A request that is not a non-negative number never fits.
within_limit(name, n) if {
	is_number(n)
	n >= 0
	not limit(name)
}

within_limit(name, n) if {
	is_number(n)
	n >= 0
	n + object.get(infra_owner, ["usage", name], 0) <= limit(name)
}

# limit is the owner's, else the owner's account's, else the global one.
limit(name) := n if {
	n := infra_owner.limits[name]
} else := n if {
	n := owner_account.limits[name]
} else := n if {
	n := input.facts.global.limits[name]
}

# visible: templates and workflows are visible to their owner, and to
# everyone once public.
visible if attr.owner == effective.id

visible if attr.visibility == "public"
