package metalsoft.authz_test

import data.metalsoft.authz

# A small world: an owner with an account delegate and an infrastructure
# delegate, admins, and custom roles.
facts := {
	"users": {
		"u-owner": {
			"id": "u-owner", "role": "user", "account": "acct", "billable": true,
			"account_delegates": ["u-acct"], "limits": {"servers": 5}, "usage": {"servers": 3},
		},
		"u-acct": {"id": "u-acct", "role": "user"},
		"u-infra": {"id": "u-infra", "role": "user"},
		"u-other": {"id": "u-other", "role": "user"},
		"u-root": {"id": "u-root", "role": "root"},
		"u-full": {"id": "u-full", "role": "full_admin"},
		"u-basic": {"id": "u-basic", "role": "basic_admin"},
		"u-blocked": {"id": "u-blocked", "role": "user", "blocked": true},
		"u-archived": {"id": "u-archived", "role": "user", "archived": true, "blocked": true},
		"u-susp": {"id": "u-susp", "role": "user", "suspend_reasons": ["unpaid"], "billable": true},
		"u-support": {"id": "u-support", "role": "support"},
		"u-bad": {"id": "u-bad", "role": "bad"},
		"u-ghost-role": {"id": "u-ghost-role", "role": "missing"},
	},
	"accounts": {"acct": {"id": "acct", "billable": false, "limits": {"servers": 10}}},
	"roles": {
		"support": {
			"name": "support",
			"permissions": ["admin_access", "servers_read", "datalake_read"],
			"rules": [
				{
					"subject": "infrastructure", "actions": ["update"], "fields": ["label"],
					"conditions": {"status": {"$in": ["deployed"]}},
				},
				{"subject": "server", "actions": ["delete"], "inverted": true},
			],
		},
		"bad": {"name": "bad", "permissions": ["servers_read", "no_such_permission"]},
	},
	"infrastructures": {"inf-1": {
		"id": "inf-1", "owner": "u-owner", "delegates": ["u-infra"],
		"attr": {"status": "deployed"},
	}},
	"global": {"maintenance": false, "limits": {"servers": 100}},
}

request(p, action, kind, id) := {
	"principal": {"id": p},
	"action": action,
	"resource": {"kind": kind, "id": id},
	"facts": facts,
}

decide(req) := d if {
	d := authz.decision with input as req
}

allowed(req, reasons) if decide(req) == {"allow": true, "reasons": reasons}

denied(req, reasons) if decide(req) == {"allow": false, "reasons": reasons}

test_unknown_principal if denied(request("nobody", "read", "ui", ""), ["unknown_principal"])

test_status_denies_every_step if {
	denied(request("u-blocked", "access", "ui", ""), ["principal_blocked"])
	denied(request("u-archived", "access", "api", ""), ["principal_archived", "principal_blocked"])
}

test_suspended_reaches_api if allowed(request("u-susp", "access", "api", ""), ["self"])

test_infrastructure_rights if {
	allowed(request("u-owner", "deploy", "infrastructure", "inf-1"), ["owner"])
	allowed(request("u-acct", "share", "infrastructure", "inf-1"), ["account_delegate"])
	allowed(request("u-infra", "console", "infrastructure", "inf-1"), ["infrastructure_delegate"])
	denied(request("u-infra", "share", "infrastructure", "inf-1"), ["no_permission"])
	denied(request("u-other", "read", "infrastructure", "inf-1"), ["no_permission"])
	allowed(request("u-basic", "read", "infrastructure", "inf-1"), ["role_permission"])
	denied(request("u-basic", "update", "infrastructure", "inf-1"), ["no_permission"])
	denied(request("u-owner", "read", "infrastructure", "inf-404"), ["unknown_resource"])
	allowed(request("u-other", "list", "infrastructure", ""), ["self"])
}

test_impersonation if {
	allowed(object.union(request("u-acct", "pay", "billing", "u-owner"), {"acting_as": "u-owner"}), ["impersonation", "self"])
	denied(object.union(request("u-infra", "pay", "billing", "u-owner"), {"acting_as": "u-owner"}), ["impersonation_not_allowed"])
	denied(object.union(request("u-root", "read", "ui", ""), {"acting_as": "u-nobody"}), ["unknown_principal"])
	denied(object.union(request("u-root", "access", "ui", ""), {"acting_as": "u-blocked"}), ["principal_blocked"])
	denied(request("u-acct", "pay", "billing", "u-owner"), ["no_permission"])
}

test_role_invalid if {
	denied(request("u-bad", "read", "server", "s-1"), ["role_invalid"])
	denied(request("u-ghost-role", "access", "ui", ""), ["role_invalid"])
}

test_deprecated_permission_grants_nothing if {
	allowed(request("u-support", "read", "server", "s-1"), ["role_permission"])
	denied(request("u-support", "read", "datalake", "d-1"), ["no_permission"])
}

test_rules if {
	update := object.union(request("u-support", "update", "infrastructure", "inf-1"), {"fields": ["label"]})
	allowed(update, ["rule"])
	denied(object.union(update, {"fields": ["label", "owner"]}), ["field_not_allowed"])
	denied(request("u-support", "delete", "server", "s-1"), ["denied_by_rule"])
}

test_maintenance if {
	req := request("u-owner", "read", "infrastructure", "inf-1")
	maintenance := json.patch(req, [{"op": "replace", "path": "/facts/global/maintenance", "value": true}])
	denied(maintenance, ["maintenance"])
	allowed(json.patch(maintenance, [{"op": "replace", "path": "/principal/id", "value": "u-basic"}]), ["role_permission"])
}

test_deploy_guards if {
	deploy := request("u-owner", "deploy", "infrastructure", "inf-1")
	denied(json.patch(deploy, [{"op": "add", "path": "/resource/attr", "value": {"requested": {"servers": 3}}}]), ["limit_exceeded"])
	allowed(json.patch(deploy, [{"op": "add", "path": "/resource/attr", "value": {"requested": {"servers": 2}}}]), ["owner"])
	denied(json.patch(deploy, [{"op": "add", "path": "/resource/attr", "value": {"requested": {"servers": "2"}}}]), ["limit_exceeded"])
	unbillable := json.patch(deploy, [{"op": "replace", "path": "/facts/users/u-owner/billable", "value": false}])
	denied(unbillable, ["not_billable"])
}

test_builtin_roles if {
	authz.builtin_roles.full_admin == authz.all_permissions - {"maintenance_write", "admin_maintenance_write", "prices_write"}
	authz.builtin_roles.basic_admin == {p | some p in authz.all_permissions; endswith(p, "_read")} | {"admin_access"}
	denied(request("u-full", "update", "price", "p-1"), ["no_permission"])
	allowed(request("u-root", "update", "price", "p-1"), ["role_permission"])
	allowed(request("u-full", "block", "user", "u-other"), ["role_permission"])
	denied(request("u-basic", "block", "user", "u-other"), ["no_permission"])
}

with_resource(req, doc) := json.patch(req, [{"op": "add", "path": "/facts/resource", "value": doc}])

test_owned_resources if {
	tpl := request("u-basic", "read", "template", "tpl-1")
	denied(with_resource(tpl, {"kind": "template", "id": "tpl-1", "owner": "u-full"}), ["not_visible"])
	allowed(with_resource(tpl, {"kind": "template", "id": "tpl-1", "owner": "u-full", "visibility": "public"}), ["role_permission"])
	allowed(with_resource(tpl, {"kind": "template", "id": "tpl-1", "owner": "u-basic"}), ["role_permission"])

	# A stored document without an owner has none, whatever the request says.
	claimed := json.patch(tpl, [{"op": "add", "path": "/resource/attr", "value": {"owner": "u-basic"}}])
	denied(with_resource(claimed, {"kind": "template", "id": "tpl-1"}), ["not_visible"])
	allowed(claimed, ["role_permission"])
	denied(request("u-other", "read", "template", "tpl-1"), ["no_permission"])
}

test_secrets if {
	secret := with_resource(request("u-other", "read", "secret", "s-1"), {"kind": "secret", "id": "s-1", "owner": "u-other"})
	allowed(secret, ["owner"])
	denied(json.patch(secret, [{"op": "replace", "path": "/principal/id", "value": "u-full"}]), ["no_permission"])
	allowed(json.patch(secret, [{"op": "replace", "path": "/principal/id", "value": "u-root"}]), ["role_permission"])
	allowed(request("u-basic", "list", "secret", ""), ["role_permission"])
}

test_credentials if {
	instance := json.patch(request("u-infra", "read", "credential", "c-1"), [{
		"op": "add", "path": "/resource/attr",
		"value": {"scope": "instance", "infrastructure": "inf-1"},
	}])
	allowed(instance, ["infrastructure_delegate"])
	denied(json.patch(instance, [{"op": "replace", "path": "/principal/id", "value": "u-root"}]), ["no_permission"])
	denied(json.patch(instance, [{"op": "replace", "path": "/resource/attr/infrastructure", "value": "inf-2"}]), ["unknown_resource"])
	ipmi := json.patch(request("u-root", "read", "credential", "c-2"), [{"op": "add", "path": "/resource/attr", "value": {"scope": "server_ipmi"}}])
	allowed(ipmi, ["role_permission"])
	denied(json.patch(ipmi, [{"op": "replace", "path": "/principal/id", "value": "u-full"}]), ["no_permission"])
}

test_reservations if {
	reserve := json.patch(request("u-acct", "create", "reservation", ""), [{"op": "add", "path": "/resource/attr", "value": {"owner": "u-owner"}}])
	allowed(reserve, ["account_delegate"])
	denied(json.patch(reserve, [{"op": "replace", "path": "/principal/id", "value": "u-susp"}]), ["no_permission"])
	denied(json.patch(reserve, [{"op": "replace", "path": "/resource/attr/owner", "value": "u-susp"}, {"op": "replace", "path": "/principal/id", "value": "u-susp"}]), ["principal_suspended"])
	allowed(json.patch(reserve, [{"op": "replace", "path": "/principal/id", "value": "u-full"}]), ["role_permission"])
}

test_admin_maintenance if {
	admin := json.patch(request("u-full", "access", "admin", ""), [{"op": "add", "path": "/facts/global/admin_maintenance", "value": true}])
	denied(admin, ["maintenance"])
	allowed(json.patch(admin, [{"op": "replace", "path": "/principal/id", "value": "u-root"}]), ["role_permission"])
	allowed(request("u-full", "access", "admin", ""), ["role_permission"])
}

test_explain if {
	x := authz.explain with input as request("u-acct", "read", "infrastructure", "inf-1")
	x.step == "grants"
	x.effective_principal == "u-acct"
	x.owner == "u-owner"
	x.owner_account_delegates == ["u-acct"]
	startswith(x.decided_by, "6. grants")
}

test_attr_overlay if {
	# Stored attributes and fixed fields win over the request's.
	req := json.patch(request("u-owner", "read", "infrastructure", "inf-1"), [{
		"op": "add", "path": "/resource/attr",
		"value": {"status": "draft", "owner": "u-other", "extra": 1},
	}])
	a := authz.attr with input as req
	a == {"status": "deployed", "owner": "u-owner", "extra": 1}
}

acting(req, target) := object.union(req, {"acting_as": target})

with_attr(req, a) := json.patch(req, [{"op": "add", "path": "/resource/attr", "value": a}])

test_impersonation_scope if {
	allowed(acting(request("u-acct", "update", "billing", "u-owner"), "u-owner"), ["impersonation", "self"])
	allowed(acting(request("u-acct", "read", "utilization_report", "u-owner"), "u-owner"), ["impersonation", "owner"])
	allowed(acting(request("u-acct", "access", "api", ""), "u-owner"), ["impersonation", "self"])
	denied(acting(request("u-acct", "deploy", "infrastructure", "inf-1"), "u-owner"), ["impersonation_not_allowed"])
	denied(acting(request("u-root", "read", "infrastructure", "inf-1"), "u-owner"), ["impersonation_not_allowed"])
	x := authz.explain with input as acting(request("u-acct", "deploy", "infrastructure", "inf-1"), "u-owner")
	x.step == "impersonation_scope"
	startswith(x.decided_by, "3. impersonation scope")
}

test_requested_malformed if {
	deploy := request("u-owner", "deploy", "infrastructure", "inf-1")
	every bad in [[1], 1, "x", null, {"gpus": -1}, {"gpus": "1"}] {
		denied(with_attr(deploy, {"requested": bad}), ["limit_exceeded"])
	}
	allowed(with_attr(deploy, {"requested": {"gpus": 7}}), ["owner"])
	x := authz.explain with input as with_attr(deploy, {"requested": [100]})
	x.step == "guards"
	x.limits.requested == [100]
}

test_reservation_owner_suspended if {
	reserve := with_attr(request("u-acct", "create", "reservation", ""), {"owner": "u-owner"})
	suspended := json.patch(reserve, [{"op": "add", "path": "/facts/users/u-owner/suspend_reasons", "value": ["unpaid"]}])
	denied(suspended, ["owner_suspended"])
	allowed(json.patch(suspended, [{"op": "replace", "path": "/action", "value": "read"}]), ["account_delegate"])
}

test_users if {
	denied(request("u-root", "delete", "user", "u-other"), ["no_permission"])
	allowed(request("u-root", "update", "user", "u-other"), ["role_permission"])
	allowed(request("u-full", "update", "user", "u-other"), ["role_permission"])
	denied(request("u-basic", "update", "user", "u-other"), ["no_permission"])
	allowed(request("u-owner", "share", "user", "u-owner"), ["self"])
	denied(request("u-acct", "unshare", "user", "u-owner"), ["no_permission"])
	manager := json.patch(request("u-other", "delete", "user", "u-owner"), [
		{"op": "add", "path": "/facts/roles/manager", "value": {"name": "manager", "rules": [{"subject": "user", "actions": ["manage"]}]}},
		{"op": "replace", "path": "/facts/users/u-other/role", "value": "manager"},
	])
	denied(manager, ["no_permission"])
	denied(json.patch(manager, [{"op": "replace", "path": "/action", "value": "block"}]), ["no_permission"])
	allowed(json.patch(manager, [{"op": "replace", "path": "/action", "value": "read"}]), ["rule"])
}

test_credentials_read_only if {
	switch := with_attr(request("u-root", "read", "credential", "c-2"), {"scope": "switch"})
	allowed(switch, ["role_permission"])
	every action in ["delete", "update", "create", "archive", "deploy"] {
		denied(json.patch(switch, [{"op": "replace", "path": "/action", "value": action}]), ["no_permission"])
	}
}

test_write_permissions_narrowed if {
	denied(request("u-full", "create", "server", ""), ["no_permission"])
	allowed(request("u-full", "update", "server", "s-1"), ["role_permission"])
	allowed(request("u-full", "create", "variable", ""), ["role_permission"])
	secret := with_resource(request("u-full", "update", "secret", "s-1"), {"kind": "secret", "id": "s-1", "owner": "u-other"})
	denied(secret, ["no_permission"])
	allowed(json.patch(secret, [{"op": "replace", "path": "/principal/id", "value": "u-other"}]), ["owner"])
	allowed(json.patch(secret, [{"op": "replace", "path": "/principal/id", "value": "u-root"}]), ["role_permission"])
	allowed(request("u-other", "create", "secret", ""), ["owner"])
	denied(with_attr(request("u-other", "create", "secret", ""), {"owner": "u-owner"}), ["no_permission"])
}

test_vm_kind if {
	"vm" in authz.kinds
	denied(request("u-root", "read", "vm", "vm-1"), ["no_permission"])
}
