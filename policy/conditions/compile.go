package conditions

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
)

// Compile validates a condition document and compiles it for Match. A nil
// or empty document matches everything. Any unknown operator or malformed
// operand is an error: the role carrying the rule is invalid.
func Compile(cond map[string]any) (*Matcher, error) {
	root, err := compileDoc(cond)
	if err != nil {
		return nil, fmt.Errorf("conditions: %w", err)
	}
	return &Matcher{root: root}, nil
}

// compileDoc compiles a query document: field entries and $and/$or/$nor,
// combined with AND. Keys are visited in sorted order so that errors are
// deterministic.
func compileDoc(doc map[string]any) (docPred, error) {
	preds := make(allDoc, 0, len(doc))
	for _, k := range sortedKeys(doc) {
		p, err := compileEntry(k, doc[k])
		if err != nil {
			return nil, err
		}
		preds = append(preds, p)
	}
	if len(preds) == 1 {
		return preds[0], nil
	}
	return preds, nil
}

func compileEntry(key string, v any) (docPred, error) {
	switch key {
	case "$and", "$or", "$nor":
		docs, err := compileDocList(key, v)
		if err != nil {
			return nil, err
		}
		switch key {
		case "$and":
			return allDoc(docs), nil
		case "$or":
			return anyDoc(docs), nil
		}
		return notDoc{anyDoc(docs)}, nil
	}
	if strings.HasPrefix(key, "$") {
		return nil, fmt.Errorf("unknown top-level operator %q", key)
	}
	if strings.Contains(key, "${") {
		return nil, fmt.Errorf("field %q: a placeholder stands only for a value", key)
	}
	path, err := splitPath(key)
	if err != nil {
		return nil, err
	}
	pred, err := compileFieldValue(v)
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", key, err)
	}
	return &field{path: path, pred: pred}, nil
}

func compileDocList(op string, v any) ([]docPred, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil, fmt.Errorf("%s needs a non-empty array of documents, got %s", op, describe(v))
	}
	docs := make([]docPred, len(arr))
	for i, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s[%d] needs a document, got %s", op, i, describe(e))
		}
		d, err := compileDoc(m)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", op, i, err)
		}
		docs[i] = d
	}
	return docs, nil
}

// compileFieldValue compiles the value of a field entry: an operator
// document, or a literal for implicit equality.
func compileFieldValue(v any) (valuePred, error) {
	if m, ok := v.(map[string]any); ok && isOperatorDoc(m) {
		return compileOperators(m)
	}
	return compileEq(v)
}

// isOperatorDoc reports whether one of m's keys is an operator; a mix of
// operators and field names is rejected later by compileOperators.
func isOperatorDoc(m map[string]any) bool {
	for k := range m {
		if strings.HasPrefix(k, "$") {
			return true
		}
	}
	return false
}

func compileEq(v any) (valuePred, error) {
	op, err := newOperand(v)
	if err != nil {
		return nil, err
	}
	return anyOf{&eqPred{op: op}}, nil
}

// compileOperators compiles an operator document: each operator must hold.
func compileOperators(m map[string]any) (valuePred, error) {
	preds := make(allOf, 0, len(m))
	for _, k := range sortedKeys(m) {
		var p valuePred
		var err error
		switch k {
		case "$options":
			if _, ok := m["$regex"]; !ok {
				return nil, fmt.Errorf("$options without $regex")
			}
			continue // compiled with $regex
		case "$regex":
			p, err = compileRegex(m["$regex"], m["$options"])
		default:
			p, err = compileOperator(k, m[k])
		}
		if err != nil {
			return nil, err
		}
		preds = append(preds, p)
	}
	if len(preds) == 1 {
		return preds[0], nil
	}
	return preds, nil
}

// compileOperator compiles one field-level operator other than $regex.
func compileOperator(op string, v any) (valuePred, error) {
	switch op {
	case "$eq":
		return compileEq(v)
	case "$ne":
		p, err := compileEq(v)
		return notOf{p}, err
	case "$in", "$nin":
		list, err := newList(op, v)
		if err != nil {
			return nil, err
		}
		var p valuePred = anyOf{&inPred{list: list}}
		if op == "$nin" {
			p = notOf{p}
		}
		return p, nil
	case "$gt", "$gte", "$lt", "$lte":
		return compileCmp(op, v)
	case "$exists":
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("$exists needs a boolean, got %s", describe(v))
		}
		return existsPred{want: b}, nil
	case "$size":
		n, ok := sizeOperand(v)
		if !ok {
			return nil, fmt.Errorf("$size needs a non-negative integer, got %s", describe(v))
		}
		return anyOf{sizePred{n: n}}, nil
	case "$all":
		list, err := newList(op, v)
		switch {
		case err != nil:
			return nil, err
		case list.ref != nil:
			return &allRefPred{list: list}, nil
		case len(list.items) == 0:
			return never{}, nil // MongoDB: $all: [] matches nothing
		}
		preds := make(allOf, len(list.items))
		for i := range list.items {
			preds[i] = anyOf{&eqPred{op: list.items[i]}}
		}
		return preds, nil
	case "$elemMatch":
		return compileElemMatch(v)
	case "$not":
		m, ok := v.(map[string]any)
		if !ok || len(m) == 0 {
			return nil, fmt.Errorf("$not needs a non-empty operator document, got %s", describe(v))
		}
		for k := range m {
			if !strings.HasPrefix(k, "$") {
				return nil, fmt.Errorf("$not needs an operator document, got field %q", k)
			}
		}
		p, err := compileOperators(m)
		if err != nil {
			return nil, fmt.Errorf("$not: %w", err)
		}
		return notOf{p}, nil
	}
	if !strings.HasPrefix(op, "$") {
		return nil, fmt.Errorf("operator document mixes operators and the field %q", op)
	}
	return nil, fmt.Errorf("unknown operator %q", op)
}

// newList compiles the operand of $in, $nin, $all: an array, or a
// placeholder naming an array field of the principal.
func newList(op string, v any) (list, error) {
	if s, ok := v.(string); ok {
		ref, err := placeholder(s)
		if err != nil {
			return list{}, fmt.Errorf("%s: %w", op, err)
		}
		if ref != nil {
			return list{ref: ref}, nil
		}
	}
	arr, ok := v.([]any)
	if !ok {
		return list{}, fmt.Errorf("%s needs an array or a placeholder, got %s", op, describe(v))
	}
	items := make([]operand, len(arr))
	for i, e := range arr {
		o, err := newOperand(e)
		if err != nil {
			return list{}, fmt.Errorf("%s[%d]: %w", op, i, err)
		}
		items[i] = o
	}
	return list{items: items}, nil
}

func compileCmp(op string, v any) (valuePred, error) {
	o, err := newOperand(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	_, isNum := toNumber(v)
	_, isStr := v.(string)
	if !isNum && !isStr {
		return nil, fmt.Errorf("%s needs a number or a string, got %s", op, describe(v))
	}
	var test func(int) bool
	switch op {
	case "$gt":
		test = func(c int) bool { return c > 0 }
	case "$gte":
		test = func(c int) bool { return c >= 0 }
	case "$lt":
		test = func(c int) bool { return c < 0 }
	default:
		test = func(c int) bool { return c <= 0 }
	}
	return anyOf{&cmpPred{op: o, test: test}}, nil
}

// sizeOperand accepts a non-negative integral number (1, 1.0, "1" as
// json.Number).
func sizeOperand(v any) (int, bool) {
	n, ok := toNumber(v)
	switch {
	case !ok:
		return 0, false
	case n.isInt:
		return int(n.i), n.i >= 0 && n.i <= math.MaxInt32
	}
	return int(n.f), n.f >= 0 && n.f <= math.MaxInt32 && n.f == math.Trunc(n.f)
}

// compileElemMatch compiles $elemMatch. Its value form (only field-level
// operators: {$gte: 80, $lt: 85}) applies to each element; its object form
// (field names and $and/$or/$nor) applies to each document element.
func compileElemMatch(v any) (valuePred, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$elemMatch needs a document, got %s", describe(v))
	}
	valueForm := false
	for k := range m {
		if strings.HasPrefix(k, "$") && k != "$and" && k != "$or" && k != "$nor" {
			valueForm = true
		}
	}
	if valueForm {
		p, err := compileOperators(m)
		if err != nil {
			return nil, fmt.Errorf("$elemMatch: %w", err)
		}
		return anyOf{&elemMatchPred{value: p}}, nil
	}
	d, err := compileDoc(m)
	if err != nil {
		return nil, fmt.Errorf("$elemMatch: %w", err)
	}
	return anyOf{&elemMatchPred{doc: d}}, nil
}

// compileRegex compiles $regex with its $options.
func compileRegex(pattern, options any) (valuePred, error) {
	pat, ok := pattern.(string)
	if !ok {
		return nil, fmt.Errorf("$regex needs a string, got %s", describe(pattern))
	}
	var opts string
	if options != nil {
		if opts, ok = options.(string); !ok {
			return nil, fmt.Errorf("$options needs a string, got %s", describe(options))
		}
	}
	var flags strings.Builder
	for _, f := range opts {
		switch f {
		case 'i', 'm', 's':
			flags.WriteRune(f)
		case 'x':
			pat = stripExtended(pat)
		default:
			return nil, fmt.Errorf("$options: unsupported flag %q (supported: i, m, s, x)", f)
		}
	}
	if flags.Len() > 0 {
		pat = "(?" + flags.String() + ")" + pat
	}
	tpl, err := parseRegexTemplate(pat)
	switch {
	case err != nil:
		return nil, fmt.Errorf("$regex: %w", err)
	case tpl != nil:
		return anyOf{&regexPred{tpl: tpl}}, nil
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, fmt.Errorf("$regex: %w", err)
	}
	return anyOf{&regexPred{re: re}}, nil
}

// stripExtended applies PCRE's x flag: white space and #-comments outside
// character classes are removed; an escaped white space character stays.
func stripExtended(p string) string {
	var b strings.Builder
	inClass, escaped, comment := false, false, false
	for _, r := range p {
		switch {
		case comment:
			comment = r != '\n'
		case escaped:
			escaped = false
			if isSpace(r) {
				b.WriteString(regexp.QuoteMeta(string(r)))
			} else {
				b.WriteRune('\\')
				b.WriteRune(r)
			}
		case r == '\\':
			escaped = true
		case inClass:
			inClass = r != ']'
			b.WriteRune(r)
		case r == '[':
			inClass = true
			b.WriteRune(r)
		case isSpace(r):
		case r == '#':
			comment = true
		default:
			b.WriteRune(r)
		}
	}
	if escaped {
		b.WriteRune('\\') // a trailing backslash stays an error for regexp
	}
	return b.String()
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v'
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// describe names a value's type for error messages.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case map[string]any:
		return "a document"
	case string:
		return fmt.Sprintf("the string %q", v)
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	}
	if _, ok := toNumber(v); ok {
		return fmt.Sprintf("the number %v", v)
	}
	return fmt.Sprintf("a value of type %T", v)
}
