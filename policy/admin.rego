# The admin RBAC table of docs/model.md: which permission an action on a kind
# needs. <name>_read grants read and list, <name>_write create, update,
# delete and the kind's other mutating actions.
package metalsoft.authz

# admin_permissions maps a kind to the permission of each access class.
# Missing classes grant nothing (events_write is "Not used"; servers_write is
# "change and edit" only; no permission reads a secret's value or changes a
# secret: its owner or root does, grants.rego).
admin_permissions := {
	"server": {"read": "servers_read", "write": "servers_write"},
	"server_type": {"read": "server_types_read"},
	"server_type_utilization_report": {"read": "server_type_utilization_report_read"},
	"switch": {"read": "switches_read", "write": "switches_write"},
	"storage": {"read": "storage_read", "write": "storage_write"},
	"subnet": {"read": "subnets_read", "write": "subnets_write"},
	"infrastructure": {"read": "infrastructures_read", "write": "infrastructures_write"},
	"template": {"read": "templates_read", "write": "templates_write"},
	"event": {"read": "events_read"},
	"job": {"read": "job_queue_read", "write": "job_queue_write"},
	"workflow": {"read": "workflows_read", "write": "workflows_write"},
	"variable": {"read": "variables_and_secrets_read", "write": "variables_and_secrets_write"},
	"secret": {"read": "variables_and_secrets_read", "write": "variables_and_secrets_write"},
	"price": {"read": "prices_read", "write": "prices_write"},
	"reservation": {"read": "subscriptions_read", "write": "subscriptions_write"},
	"utilization_report": {"read": "utilization_reports_read"},
	"admin": {"access": "admin_access"},
	"suspend_reason": {"read": "suspend_reasons_read", "write": "suspend_reasons_write"},
	"user": {"read": "admin_access", "suspend": "suspend_reasons_write"},
	"global_configuration": {"read": "global_configurations_read", "write": "global_configurations_write"},
	"maintenance": {"read": "maintenance_read", "write": "maintenance_write"},
	"admin_maintenance": {"read": "admin_maintenance_read", "write": "admin_maintenance_write"},
}

# action_classes maps an action to its access class.
action_classes := {"read": "read", "list": "read", "create": "write", "update": "write", "delete": "write"}

# class_overrides are the kinds whose actions differ from action_classes.
class_overrides := {
	"infrastructure": {
		"deploy": "write", "console": "write", "share": "write", "unshare": "write",
	},
	"job": {"resume": "write"},
	"server": {"create": "none", "delete": "none"},
	"secret": {"read": "value", "create": "owner", "update": "owner", "delete": "owner"},
	"admin": {"access": "access"},
	"user": {"suspend": "suspend", "unsuspend": "suspend", "create": "none", "update": "none", "delete": "none"},
}

# access_class of the request's action on its kind.
access_class := c if {
	c := class_overrides[input.resource.kind][input.action]
} else := action_classes[input.action]

# required_permission is the admin permission that grants the request.
required_permission := admin_permissions[input.resource.kind][access_class]
