// Package conditions compiles and evaluates the MongoDB-style conditions of
// the ABAC rules of a custom role, and exposes them to OPA as Go built-in
// functions.
//
// A condition document is a query over the request's resource attributes:
//
//	{status: {$in: [deployed, active]}, owner: "${principal.id}"}
//
// Compile validates a document once; Matcher.Match evaluates it against an
// attribute document and the effective principal (a user document as a map).
//
// # Semantics
//
// The operators are those of MongoDB's query language: implicit equality,
// $eq $ne $in $nin $gt $gte $lt $lte $exists $regex (with $options) $all
// $size $elemMatch $not at field level, and $and $or $nor at document level
// (a document's fields are an implicit AND). They follow MongoDB:
//
//   - a dotted path ("a.b.c") reaches nested documents; a numeric component
//     indexes an array, and a field component reaches into every document
//     element of an array (one level, as MongoDB does);
//   - a field holding an array matches $eq, $in, $gt, $regex, ... when the
//     whole array or ANY element matches; $ne and $nin are the negations of
//     $eq and $in, so they match when no element matches, and match a missing
//     field;
//   - {a: null} and {a: {$in: [null]}} match a null or missing field;
//     $exists: true matches null; $exists: false and $not match a missing field;
//   - numbers compare by value across int, int64, uint, float64 and
//     json.Number (1 == 1.0 == json.Number("1")); NaN equals NaN and is not
//     ordered;
//   - $gt, $gte, $lt, $lte order numbers with numbers and strings with strings
//     (byte-wise); different types never match;
//   - equality of arrays (ordered) and documents is deep;
//   - $regex applies to strings (and string elements of arrays); any other
//     value does not match. $options supports i, m, s and x (x strips
//     unescaped white space and #-comments outside character classes before
//     the pattern is handed to Go's RE2, so PCRE-only syntax such as
//     look-arounds or back-references makes the conditions invalid).
//
// # Placeholders
//
// A string value that is exactly "${principal.<path>}" (dotted path allowed)
// is replaced, at match time, by that field of the principal. The path's
// first component must be a field of a user document (PrincipalFields).
// Placeholders are substituted in the operands of $eq $ne $in $nin $gt $gte
// $lt $lte $all and in literal values (also nested inside arrays and
// documents). Inside a $regex pattern a placeholder may stand anywhere
// ("^${principal.id}-"): it is replaced by the field's value (a string,
// number or boolean) with every metacharacter quoted, as one atom (a
// non-capturing group), so a value never changes the pattern's meaning.
// Any other string or field name containing "${", or a placeholder naming
// no user field, is rejected by Compile, so a typo never turns into a
// literal that silently never matches (or, in a "cannot" rule, never
// denies). The operand of $in, $nin and $all may itself be a placeholder
// naming an array field of the principal:
//
//	{project: {$in: "${principal.credential_access}"}}
//
// A placeholder whose principal field is missing or null (or, for a list
// operand, not an array; in a $regex, an array or a document) is unresolved. A
// comparison against it is neither true nor false but unknown, and unknown
// propagates with three-valued logic (NOT unknown = unknown; AND/OR as in
// SQL). Match reports true only when the conditions definitely match. For a
// "cannot" (inverted) rule that must fail closed, use MayMatch, which is
// true when the conditions match or cannot be decided.
//
// # Choices where MongoDB is lax
//
// Compile rejects, so that the role is invalid rather than silently
// mismatching: unknown operators (MongoDB's $type, $mod, $expr, $where, ...
// included); an operator document mixing operator and field keys; keys
// beginning with "$" inside literal values (write a dotted path instead);
// $in, $nin, $all operands that are not arrays or placeholders; $and, $or,
// $nor operands that are not non-empty arrays of documents; $not operands
// that are not a non-empty operator document; $size operands that are not
// non-negative integers; $exists operands that are not booleans; $gt, $gte,
// $lt, $lte operands that are not numbers, strings or placeholders; $regex
// patterns that are not strings or do not compile; $options without $regex
// or with flags other than i, m, s, x; empty or malformed field paths
// (including components beginning with "$"); and values of Go types
// outside string, bool, nil, the integer and float types, json.Number,
// []any and map[string]any.
//
// Match reads attribute and principal values of the same types; a value of
// another Go type (a []string, a struct) is an opaque scalar that equals
// nothing. Documents differ from MongoDB's in one respect: Go maps have no
// key order, so document equality ignores the order of fields. Numbers:
// integers are exact at any size, other numbers are float64 (as MongoDB's
// doubles), so json.Number("1e400") is +Inf.
//
// # OPA built-ins
//
// RegoOptions and TesterBuiltins register, for rego.New and OPA's tester:
//
//	metalsoft.conditions_match(conditions, attr, principal)     -> boolean
//	metalsoft.conditions_may_match(conditions, attr, principal) -> boolean
//	metalsoft.conditions_valid(conditions)                      -> boolean
//
// conditions_match is false when the conditions are invalid or undecided;
// conditions_may_match is true when they match, are undecided (unresolved
// placeholder) or are invalid, for deny rules; neither ever raises an error,
// so a bad rule cannot abort evaluation into an allow. The built-ins are
// deterministic. Compiled matchers are cached per distinct conditions value
// (bounded, safe for concurrent use), so a role's rules compile once.
// Builtins and Capabilities describe the built-ins to `opa check
// --capabilities`.
package conditions
