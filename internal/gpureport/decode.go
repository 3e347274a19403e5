package gpureport

// This file is the decoder behind Parse. nss-entrypoint reads the probe's
// report on every start with a GPU, and linking encoding/json for it cost a
// measurable part of every start (its initialisation and footprint), so the
// report's own types are decoded here, without reflection.
//
// The decoder accepts exactly the documents that encoding/json.Unmarshal
// accepts into a Report, and yields the same value, with one documented
// exception (maxItems). The rules it mirrors:
//   - the whole input is one JSON value with optional white space around it
//     (space, tab, CR, LF); anything after it is an error;
//   - nesting deeper than maxDepth (10000, as encoding/json) is an error,
//     also inside values that are skipped;
//   - object keys match the json tag names case-insensitively, folded as
//     encoding/json folds them (so "ſ" matches "s" and the Kelvin sign "K"
//     matches "k"); unknown keys are skipped; of duplicate keys the last
//     wins, and a later object merges into the struct, pointer target or
//     map that an earlier one filled;
//   - null sets a pointer, slice or map to nil and leaves anything else as
//     it was;
//   - an array reuses the slice it decodes into as reflect does: elements
//     within the slice's capacity keep what an earlier array left there
//     and are decoded into; an empty array gives an empty, non-nil slice;
//   - strings: \u escapes, surrogate pairs joined, a lone surrogate and each
//     byte of invalid UTF-8 become U+FFFD;
//   - numbers: the JSON grammar, then strconv.ParseInt, ParseUint or
//     ParseFloat on the literal: 1.5, 1e3 or "1" into an int, -1 into a
//     uint64, an out-of-range number, are errors.
//
// Bounds: the decoder never recurses deeper than the schema (six levels);
// values under unknown keys are skipped by a loop with an explicit stack of
// at most maxDepth bytes. It allocates the decoded value and one scratch
// buffer for unescaped strings: slices and maps hold at most maxItems
// elements in all (4096 Devices, about 2.7 MB as append grows them, is the
// most), a string at most three times its input (invalid UTF-8 becomes
// three-byte U+FFFD) with as much again for the scratch buffer. On the
// hostile 1 MiB documents of TestDecodeAllocation that is at most six times
// the input.

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

const (
	// maxDepth is the deepest nesting of arrays and objects accepted, the
	// top-level value counting as one: encoding/json's limit.
	maxDepth = 10000
	// maxItems bounds the array elements and map entries decoded into the
	// report, all of them together, each time one is decoded (a repeated
	// key counts again). encoding/json has no such limit; this is the one
	// place where the two differ, and only on documents no probe writes: a
	// report holds a few hundred at most (per GPU a few dozen errors and
	// clock events).
	maxItems = 4096
)

// errTooManyItems is the error for a document past maxItems. It is a value
// of a type of its own, so that the package has no initialisation to run.
var errTooManyItems error = tooManyItems{}

type tooManyItems struct{}

func (tooManyItems) Error() string {
	return "more than " + strconv.Itoa(maxItems) + " array elements and map entries"
}

// decodeError is a syntax or type error at an offset of the input.
type decodeError struct {
	off int
	msg string
}

func (e *decodeError) Error() string {
	return e.msg + " at offset " + strconv.Itoa(e.off)
}

// decodeReport decodes data into r.
func decodeReport(data []byte, r *Report) error {
	d := decoder{data: data}
	d.space()
	if err := d.report(r); err != nil {
		return err
	}
	d.space()
	if d.off < len(d.data) {
		return d.syntax("after top-level value")
	}
	return nil
}

// decoder reads one document. Each method that decodes a value starts at
// its first byte (white space already skipped) and ends just past it.
type decoder struct {
	data  []byte
	off   int
	depth int // arrays and objects open, the top-level value included
	items int // elements and entries decoded (maxItems)
	// buf holds the latest unescaped string.
	buf []byte
	// stack holds the containers open in skip: '{' or '['.
	stack []byte
	// name holds the folded key (fold).
	name [32]byte
}

// syntax returns a syntax error at the current offset.
func (d *decoder) syntax(context string) error {
	if d.off >= len(d.data) {
		return &decodeError{d.off, "unexpected end of JSON input"}
	}
	return &decodeError{d.off, "invalid character " + quoteChar(d.data[d.off]) + " " + context}
}

// quoteChar formats c for an error message.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.QuoteRune(rune(c))
	return "'" + s[1:len(s)-1] + "'"
}

// mismatch returns the error for a value that cannot go into a Go value of
// type want; a byte that begins no value is a syntax error.
func (d *decoder) mismatch(want string) error {
	var kind string
	switch c := d.peek(); {
	case c == '{':
		kind = "object"
	case c == '[':
		kind = "array"
	case c == '"':
		kind = "string"
	case c == 't' || c == 'f':
		kind = "bool"
	case c == 'n':
		kind = "null"
	case c == '-' || isDigit(c):
		kind = "number"
	default:
		return d.syntax("looking for beginning of value")
	}
	return &decodeError{d.off, "cannot unmarshal " + kind + " into a Go value of type " + want}
}

// peek returns the byte at the current offset, or 0 at the end (0 begins
// no token).
func (d *decoder) peek() byte {
	if d.off < len(d.data) {
		return d.data[d.off]
	}
	return 0
}

// space skips JSON white space.
func (d *decoder) space() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// literal consumes the literal word (true, false or null).
func (d *decoder) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if d.off >= len(d.data) || d.data[d.off] != word[i] {
			return d.syntax("in literal " + word)
		}
		d.off++
	}
	return nil
}

// number consumes a number and returns its text.
func (d *decoder) number() ([]byte, error) {
	start := d.off
	if d.peek() == '-' {
		d.off++
	}
	switch c := d.peek(); {
	case c == '0':
		d.off++
	case '1' <= c && c <= '9':
		d.digits()
	default:
		return nil, d.syntax("in numeric literal")
	}
	if d.peek() == '.' {
		d.off++
		if !isDigit(d.peek()) {
			return nil, d.syntax("after decimal point in numeric literal")
		}
		d.digits()
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.off++
		if c := d.peek(); c == '+' || c == '-' {
			d.off++
		}
		if !isDigit(d.peek()) {
			return nil, d.syntax("in exponent of numeric literal")
		}
		d.digits()
	}
	return d.data[start:d.off], nil
}

func (d *decoder) digits() {
	for d.off < len(d.data) && isDigit(d.data[d.off]) {
		d.off++
	}
}

// scanString consumes a string and returns the bytes between its quotes,
// and whether they are the string's value as they stand (no escape, no
// invalid UTF-8).
func (d *decoder) scanString() (raw []byte, plain bool, err error) {
	d.off++ // the opening quote
	start := d.off
	plain = true
	for d.off < len(d.data) {
		switch c := d.data[d.off]; {
		case c == '"':
			d.off++
			return d.data[start : d.off-1], plain, nil
		case c == '\\':
			plain = false
			d.off++
			switch d.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.off++
			case 'u':
				d.off++
				for range 4 {
					if _, ok := hexDigit(d.peek()); !ok {
						return nil, false, d.syntax("in \\u hexadecimal character escape")
					}
					d.off++
				}
			default:
				return nil, false, d.syntax("in string escape code")
			}
		case c < ' ':
			return nil, false, d.syntax("in string literal")
		case c < utf8.RuneSelf:
			d.off++
		default:
			r, n := utf8.DecodeRune(d.data[d.off:])
			if r == utf8.RuneError && n == 1 {
				plain = false
			}
			d.off += n
		}
	}
	return nil, false, d.syntax("in string literal")
}

func hexDigit(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10), true
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

// u4 reads the escape \uXXXX at the start of s; -1 when s starts with none.
func u4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		h, ok := hexDigit(c)
		if !ok {
			return -1
		}
		r = r<<4 | h
	}
	return r
}

// unescape returns the value of the string whose checked inner bytes are
// s, in d.buf (valid until the next call).
func (d *decoder) unescape(s []byte) []byte {
	// No input byte gives more than three: room for all at once, so that a
	// long string is not copied over and over as it grows.
	if cap(d.buf) < 3*len(s) {
		d.buf = make([]byte, 0, 3*len(s))
	}
	b := d.buf[:0]
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := u4(s[i:])
				i += 6
				if 0xD800 <= r && r < 0xE000 {
					// A surrogate: with a low surrogate after a high one
					// the pair is one rune; otherwise it is U+FFFD, and
					// what follows is read on its own.
					if r2 := u4(s[i:]); r < 0xDC00 && 0xDC00 <= r2 && r2 < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // '"', '\\' or '/'
				b = append(b, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			b = utf8.AppendRune(b, r)
			i += n
		}
	}
	d.buf = b
	return b
}

// open consumes the '[' or '{' at the current offset.
func (d *decoder) open() error {
	if d.depth >= maxDepth {
		return d.syntax("past the maximum nesting depth")
	}
	d.off++
	d.depth++
	return nil
}

// close consumes the ']' or '}' at the current offset.
func (d *decoder) close() {
	d.off++
	d.depth--
}

// count notes one more element or entry decoded (maxItems).
func (d *decoder) count() error {
	d.items++
	if d.items > maxItems {
		return errTooManyItems
	}
	return nil
}

// member moves to the next member of an object that open has entered
// (first tells whether none has been read): it returns the member's key,
// unescaped (valid until the next string is read), with the decoder at the
// value; or more false once the closing brace is consumed.
func (d *decoder) member(first bool) (key []byte, more bool, err error) {
	d.space()
	switch c := d.peek(); {
	case c == '}':
		d.close()
		return nil, false, nil
	case !first && c == ',':
		d.off++
		d.space()
	case !first:
		return nil, false, d.syntax("after object key:value pair")
	}
	if d.peek() != '"' {
		return nil, false, d.syntax("looking for beginning of object key string")
	}
	raw, plain, err := d.scanString()
	if err != nil {
		return nil, false, err
	}
	if !plain {
		raw = d.unescape(raw)
	}
	if err := d.colon(); err != nil {
		return nil, false, err
	}
	return raw, true, nil
}

// colon consumes the ':' after a key and the white space around it.
func (d *decoder) colon() error {
	d.space()
	if d.peek() != ':' {
		return d.syntax("after object key")
	}
	d.off++
	d.space()
	return nil
}

// element moves to the next element of an array that open has entered
// (first tells whether none has been read), or returns more false once
// the closing bracket is consumed.
func (d *decoder) element(first bool) (more bool, err error) {
	d.space()
	switch c := d.peek(); {
	case c == ']':
		d.close()
		return false, nil
	case !first && c == ',':
		d.off++
		d.space()
	case !first:
		return false, d.syntax("after array element")
	}
	return true, nil
}

// fold returns key folded as encoding/json folds object keys to match
// them with field names (each rune to the smallest rune of its case
// folding orbit; ASCII letters to upper case), or nil when no field name
// can match: one rune folds to a non-ASCII rune, or the key is longer than
// any name. The result is valid until the next call.
func (d *decoder) fold(key []byte) []byte {
	b := d.name[:0]
	for i := 0; i < len(key); {
		if len(b) == len(d.name) {
			return nil
		}
		c := key[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			b = append(b, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		f := foldRune(r)
		if f >= utf8.RuneSelf {
			return nil
		}
		b = append(b, byte(f))
		i += n
	}
	return b
}

// foldRune returns the smallest rune of r's simple case folding orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// skip consumes one value of any shape, checking its syntax, without
// recursion: the containers open inside it are on d.stack.
func (d *decoder) skip() error {
	base := len(d.stack)
	for {
		// A value starts here.
		switch c := d.peek(); {
		case c == '{' || c == '[':
			if err := d.open(); err != nil {
				return err
			}
			d.space()
			if c == '{' && d.peek() == '}' || c == '[' && d.peek() == ']' {
				d.close()
				break
			}
			if c == '{' {
				if err := d.skipKey(); err != nil {
					return err
				}
			}
			d.stack = append(d.stack, c)
			continue
		case c == '"':
			if _, _, err := d.scanString(); err != nil {
				return err
			}
		case c == 't':
			if err := d.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := d.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := d.literal("null"); err != nil {
				return err
			}
		case c == '-' || isDigit(c):
			if _, err := d.number(); err != nil {
				return err
			}
		default:
			return d.syntax("looking for beginning of value")
		}
		// After a value: close the containers it ends, up to the next one.
		for next := false; !next; {
			if len(d.stack) == base {
				return nil
			}
			d.space()
			top := d.stack[len(d.stack)-1]
			switch c := d.peek(); {
			case c == ',':
				d.off++
				d.space()
				if top == '{' {
					if err := d.skipKey(); err != nil {
						return err
					}
				}
				next = true
			case top == '{' && c == '}', top == '[' && c == ']':
				d.close()
				d.stack = d.stack[:len(d.stack)-1]
			case top == '{':
				return d.syntax("after object key:value pair")
			default:
				return d.syntax("after array element")
			}
		}
	}
}

// skipKey consumes an object key and its colon.
func (d *decoder) skipKey() error {
	if d.peek() != '"' {
		return d.syntax("looking for beginning of object key string")
	}
	if _, _, err := d.scanString(); err != nil {
		return err
	}
	return d.colon()
}

// beginStruct starts an object that decodes into a struct: more false for
// null, which leaves the struct as it is.
func (d *decoder) beginStruct(want string) (more bool, err error) {
	switch d.peek() {
	case 'n':
		return false, d.literal("null")
	case '{':
		return true, d.open()
	}
	return false, d.mismatch(want)
}

// fields reads an object into a struct (want names it in errors; null
// leaves it as it is): field decodes the value of each key, which it gets
// folded (fold), and skips the value of a key it does not know.
func (d *decoder) fields(want string, field func(key []byte) error) error {
	more, err := d.beginStruct(want)
	for first := true; more && err == nil; first = false {
		var key []byte
		if key, more, err = d.member(first); !more || err != nil {
			break
		}
		err = field(d.fold(key))
	}
	return err
}

// Values of basic types. Null leaves each as it is.

func (d *decoder) str(p *string) error {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case '"':
		raw, plain, err := d.scanString()
		if err != nil {
			return err
		}
		if !plain {
			raw = d.unescape(raw)
		}
		*p = string(raw)
		return nil
	}
	return d.mismatch("string")
}

func (d *decoder) boolean(p *bool) error {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case 't':
		*p = true
		return d.literal("true")
	case 'f':
		*p = false
		return d.literal("false")
	}
	return d.mismatch("bool")
}

// numberFor consumes a number that is to go into a Go value of type want;
// ok false for null.
func (d *decoder) numberFor(want string) (text []byte, ok bool, err error) {
	switch c := d.peek(); {
	case c == 'n':
		return nil, false, d.literal("null")
	case c == '-' || isDigit(c):
		text, err := d.number()
		return text, err == nil, err
	}
	return nil, false, d.mismatch(want)
}

func (d *decoder) integer(p *int) error {
	start := d.off
	text, ok, err := d.numberFor("int")
	if !ok {
		return err
	}
	n, err := strconv.ParseInt(string(text), 10, 0)
	if err != nil {
		return &decodeError{start, "cannot unmarshal number " + clip(text) + " into a Go value of type int"}
	}
	*p = int(n)
	return nil
}

func (d *decoder) unsigned(p *uint64) error {
	start := d.off
	text, ok, err := d.numberFor("uint64")
	if !ok {
		return err
	}
	n, err := strconv.ParseUint(string(text), 10, 64)
	if err != nil {
		return &decodeError{start, "cannot unmarshal number " + clip(text) + " into a Go value of type uint64"}
	}
	*p = n
	return nil
}

func (d *decoder) float(p *float64) error {
	start := d.off
	text, ok, err := d.numberFor("float64")
	if !ok {
		return err
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return &decodeError{start, "cannot unmarshal number " + clip(text) + " into a Go value of type float64"}
	}
	*p = f
	return nil
}

// clip shortens a number's text for an error message.
func clip(text []byte) string {
	if len(text) > 40 {
		return string(text[:40]) + "..."
	}
	return string(text)
}

// pointer decodes into *p with dec, allocating it when nil; null sets it
// to nil.
func pointer[T any](d *decoder, p **T, dec func(*decoder, *T) error) error {
	if d.peek() == 'n' {
		if err := d.literal("null"); err != nil {
			return err
		}
		*p = nil
		return nil
	}
	if *p == nil {
		*p = new(T)
	}
	return dec(d, *p)
}

// slice decodes an array into *p with dec for each element, as
// encoding/json does through reflect: the slice grows by one element at a
// time as append grows it, elements within its capacity are decoded into
// as they are, and an empty array gives a new empty slice. Null sets *p to
// nil.
func slice[E any](d *decoder, p *[]E, dec func(*decoder, *E) error) error {
	switch d.peek() {
	case 'n':
		if err := d.literal("null"); err != nil {
			return err
		}
		*p = nil
		return nil
	case '[':
		if err := d.open(); err != nil {
			return err
		}
	default:
		return d.mismatch("slice")
	}
	s := *p
	i := 0
	for first := true; ; first = false {
		more, err := d.element(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if err := d.count(); err != nil {
			return err
		}
		if i >= cap(s) {
			var zero E
			s = append(s, zero)
		} else if i >= len(s) {
			s = s[:i+1]
		}
		if err := dec(d, &s[i]); err != nil {
			return err
		}
		i++
	}
	if i < len(s) {
		s = s[:i]
	}
	if i == 0 {
		s = make([]E, 0)
	}
	*p = s
	return nil
}

// The report's types. Each reads an object (null leaves the struct as it
// is) and matches keys with fold; an unknown key's value is skipped.

func (d *decoder) report(r *Report) error {
	return d.fields("gpureport.Report", func(key []byte) error {
		switch string(key) {
		case "SCHEMA_VERSION":
			return d.integer(&r.SchemaVersion)
		case "LOADED":
			return d.boolean(&r.Loaded)
		case "ERROR":
			return pointer(d, &r.Error, (*decoder).nvmlError)
		case "DRIVER_VERSION":
			return d.str(&r.DriverVersion)
		case "CUDA_DRIVER_VERSION":
			return d.integer(&r.CUDADriverVersion)
		case "NVML_VERSION":
			return d.str(&r.NVMLVersion)
		case "DEVICE_COUNT_ERROR":
			return pointer(d, &r.DeviceCountError, (*decoder).nvmlError)
		case "DEVICES":
			return slice(d, &r.Devices, (*decoder).device)
		case "UNAVAILABLE":
			return slice(d, &r.Unavailable, (*decoder).str)
		case "PANIC":
			return d.str(&r.Panic)
		case "NVML_LIBRARY":
			return d.str(&r.NVMLLibrary)
		case "NVML_MS":
			return d.float(&r.NVMLMillis)
		case "CUDA":
			return pointer(d, &r.CUDA, (*decoder).cuda)
		}
		return d.skip()
	})
}

func (d *decoder) nvmlError(e *NVMLError) error {
	return d.fields("gpureport.NVMLError", func(key []byte) error {
		switch string(key) {
		case "FUNCTION":
			return d.str(&e.Function)
		case "CODE":
			return d.integer(&e.Code)
		case "NAME":
			return d.str(&e.Name)
		case "MESSAGE":
			return d.str(&e.Message)
		}
		return d.skip()
	})
}

func (d *decoder) device(v *Device) error {
	return d.fields("gpureport.Device", func(key []byte) error {
		switch string(key) {
		case "INDEX":
			return d.integer(&v.Index)
		case "NAME":
			return d.str(&v.Name)
		case "UUID":
			return d.str(&v.UUID)
		case "PCI_BUS_ID":
			return d.str(&v.PCIBusID)
		case "MEMORY_TOTAL_BYTES":
			return d.unsigned(&v.MemoryTotalBytes)
		case "MEMORY_USED_BYTES":
			return d.unsigned(&v.MemoryUsedBytes)
		case "COMPUTE_CAPABILITY":
			return d.str(&v.ComputeCapability)
		case "MIG_MODE":
			return d.str(&v.MIGMode)
		case "MIG_DEVICES":
			return d.integer(&v.MIGDevices)
		case "PERSISTENCE_MODE":
			return d.str(&v.PersistenceMode)
		case "COMPUTE_PROCESSES":
			return d.integer(&v.ComputeProcesses)
		case "ERRORS":
			return d.errorMap(&v.Errors)
		case "HEALTH":
			return pointer(d, &v.Health, (*decoder).health)
		}
		return d.skip()
	})
}

// errorMap decodes Device.Errors: an existing map is added to; each entry
// starts from a zero NVMLError.
func (d *decoder) errorMap(p *map[string]NVMLError) error {
	switch d.peek() {
	case 'n':
		if err := d.literal("null"); err != nil {
			return err
		}
		*p = nil
		return nil
	case '{':
		if err := d.open(); err != nil {
			return err
		}
	default:
		return d.mismatch("map[string]gpureport.NVMLError")
	}
	if *p == nil {
		*p = map[string]NVMLError{}
	}
	for first := true; ; first = false {
		key, more, err := d.member(first)
		if err != nil || !more {
			return err
		}
		if err := d.count(); err != nil {
			return err
		}
		k := string(key)
		var e NVMLError
		if err := d.nvmlError(&e); err != nil {
			return err
		}
		(*p)[k] = e
	}
}

func (d *decoder) health(h *Health) error {
	return d.fields("gpureport.Health", func(key []byte) error {
		switch string(key) {
		case "RETIRED_PAGES_PENDING":
			return pointer(d, &h.RetiredPagesPending, (*decoder).boolean)
		case "ROW_REMAP_PENDING":
			return pointer(d, &h.RowRemapPending, (*decoder).boolean)
		case "ROW_REMAP_FAILED":
			return pointer(d, &h.RowRemapFailed, (*decoder).boolean)
		case "VOLATILE_UNCORRECTABLE_ECC":
			return pointer(d, &h.VolatileUncorrectableECC, (*decoder).unsigned)
		case "CLOCK_EVENT_REASONS":
			return pointer(d, &h.ClockEventReasons, (*decoder).unsigned)
		case "CLOCK_EVENTS":
			return slice(d, &h.ClockEvents, (*decoder).str)
		case "PCIE_GEN":
			return d.integer(&h.PCIeGen)
		case "PCIE_MAX_GEN":
			return d.integer(&h.PCIeMaxGen)
		case "PCIE_WIDTH":
			return d.integer(&h.PCIeWidth)
		case "PCIE_MAX_WIDTH":
			return d.integer(&h.PCIeMaxWidth)
		case "FABRIC_STATE":
			return d.str(&h.FabricState)
		case "FABRIC_STATUS":
			return d.str(&h.FabricStatus)
		case "COMPUTE_MODE":
			return d.str(&h.ComputeMode)
		}
		return d.skip()
	})
}

func (d *decoder) cuda(c *CUDA) error {
	return d.fields("gpureport.CUDA", func(key []byte) error {
		switch string(key) {
		case "LIBRARY":
			return d.str(&c.Library)
		case "LOAD_ERROR":
			return d.str(&c.LoadError)
		case "ERROR":
			return pointer(d, &c.Error, (*decoder).cudaError)
		case "DRIVER_VERSION":
			return d.integer(&c.DriverVersion)
		case "DEVICE_COUNT":
			return d.integer(&c.DeviceCount)
		case "DEVICES":
			return slice(d, &c.Devices, (*decoder).cudaDevice)
		case "INIT_MS":
			return d.float(&c.InitMillis)
		case "STAGE_MS":
			return d.float(&c.StageMillis)
		case "CONTEXTS":
			return d.boolean(&c.Contexts)
		case "UNAVAILABLE":
			return slice(d, &c.Unavailable, (*decoder).str)
		}
		return d.skip()
	})
}

func (d *decoder) cudaError(e *CUDAError) error {
	return d.fields("gpureport.CUDAError", func(key []byte) error {
		switch string(key) {
		case "FUNCTION":
			return d.str(&e.Function)
		case "CODE":
			return d.integer(&e.Code)
		case "NAME":
			return d.str(&e.Name)
		case "MESSAGE":
			return d.str(&e.Message)
		}
		return d.skip()
	})
}

func (d *decoder) cudaDevice(v *CUDADevice) error {
	return d.fields("gpureport.CUDADevice", func(key []byte) error {
		switch string(key) {
		case "ORDINAL":
			return d.integer(&v.Ordinal)
		case "NAME":
			return d.str(&v.Name)
		case "COMPUTE_CAPABILITY":
			return d.str(&v.ComputeCapability)
		case "PCI_BUS_ID":
			return d.str(&v.PCIBusID)
		case "CONTEXT":
			return pointer(d, &v.Context, (*decoder).cudaContext)
		}
		return d.skip()
	})
}

func (d *decoder) cudaContext(c *CUDAContext) error {
	return d.fields("gpureport.CUDAContext", func(key []byte) error {
		switch string(key) {
		case "ERROR":
			return pointer(d, &c.Error, (*decoder).cudaError)
		case "MEMORY_FREE_BYTES":
			return d.unsigned(&c.MemoryFreeBytes)
		case "MEMORY_TOTAL_BYTES":
			return d.unsigned(&c.MemoryTotal)
		case "MS":
			return d.float(&c.Millis)
		}
		return d.skip()
	})
}
