package gpureport

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// The decoder is checked against encoding/json, which the probe writes
// with and which Parse used before: for any input both must accept or both
// reject, and when they accept they must give the same Report.

// parseStd is Parse as it was, on encoding/json: the reference.
func parseStd(data []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode gpu report: %w", err)
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// sameAsStd fails t unless decodeReport and json.Unmarshal agree on data,
// and Parse and parseStd too. The decoder's one deliberate difference,
// maxItems, is allowed for.
func sameAsStd(t *testing.T, data []byte) {
	t.Helper()
	var got, want Report
	gotErr := decodeReport(data, &got)
	wantErr := json.Unmarshal(data, &want)
	if errors.Is(gotErr, errTooManyItems) {
		return
	}
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("decoder: %v\nencoding/json: %v\ninput: %q", gotErr, wantErr, data)
	}
	if gotErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("values differ for %q\ndecoder:       %s\nencoding/json: %s", data, dump(&got), dump(&want))
	}
	r, err := Parse(data)
	rStd, errStd := parseStd(data)
	if (err != nil) != (errStd != nil) {
		t.Fatalf("Parse: %v\nencoding/json Parse: %v\ninput: %q", err, errStd, data)
	}
	if err == nil && !reflect.DeepEqual(r, rStd) {
		t.Fatalf("Parse results differ for %q", data)
	}
	if err == nil && (r.SchemaVersion != SchemaVersion || !r.Loaded && r.Error == nil && r.Panic == "") {
		t.Fatalf("Parse accepted an inconsistent report: %q", data)
	}
}

// dump shows a report, pointers followed, for failure messages.
func dump(r *Report) string {
	b, err := json.Marshal(r)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// fill sets every field of v, recursively, to a value that is not zero:
// two elements in each slice and map. A field added to the report's types
// is filled too, so the round trips below cover it with no change here.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0), n)
		fill(s.Index(1), n)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMapWithSize(v.Type(), 2)
		for range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			fill(k, n)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, n)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d \"q\" \\ é \x00\x1b[31m \u2028 \U0001F600 </tag>&", *n))
	case reflect.Int:
		v.SetInt(int64(*n) * -1000003)
	case reflect.Uint64:
		v.SetUint(1<<63 + uint64(*n))
	case reflect.Float64:
		v.SetFloat(float64(*n) + 0.125)
	case reflect.Bool:
		v.SetBool(true)
	default:
		panic("fill: no value for " + v.Type().String())
	}
}

// fullReport is a report with every field set, valid for Parse.
func fullReport(seed int) *Report {
	var r Report
	fill(reflect.ValueOf(&r).Elem(), &seed)
	r.SchemaVersion = SchemaVersion
	for i := range r.Devices {
		r.Devices[i].Index = i
	}
	for i := range r.CUDA.Devices {
		r.CUDA.Devices[i].Ordinal = i
	}
	return &r
}

func TestDecodeEveryField(t *testing.T) {
	for _, seed := range []int{0, 1000} {
		want := fullReport(seed)
		for _, indent := range []bool{false, true} {
			var b []byte
			var err error
			if indent {
				b, err = json.MarshalIndent(want, "", "\t")
			} else {
				b, err = json.Marshal(want)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip differs\ngot:  %s\nwant: %s", dump(got), dump(want))
			}
			sameAsStd(t, b)
		}
	}
}

// Documents for the table and the fuzzer's seeds: what a probe writes,
// and what a broken or hostile one might.
const (
	healthy = `{"schema_version":1,"loaded":true,"devices":[{"index":0,"name":"NVIDIA H200","compute_processes":0}]}`
	// pre prefixes a valid report's other members.
	pre = `{"schema_version":1,"loaded":true,`
)

var decodeCases = []struct {
	name string
	in   string
	ok   bool // Parse accepts it
}{
	{"healthy", healthy, true},
	{"nvml error", `{"schema_version":1,"loaded":false,"error":{"function":"nvmlInit","code":9,"name":"ERROR_DRIVER_NOT_LOADED"},"devices":[]}`, true},
	{"cuda stage", `{"schema_version":1,"loaded":true,"devices":[],"cuda":{"library":"/l/libcuda.so.580.1.2","device_count":1,"devices":[{"ordinal":0,"name":"H200","context":{"memory_free_bytes":18446744073709551615,"ms":1.5e-3}}],"init_ms":80.5,"stage_ms":120,"contexts":false}}`, true},
	{"health", pre + `"devices":[{"index":0,"errors":{"uuid":{"code":3,"name":"ERROR_NOT_SUPPORTED"}},"health":{"retired_pages_pending":false,"volatile_uncorrectable_ecc":0,"clock_events":["idle","sw_power_cap"],"pcie_gen":4}}]}`, true},
	{"white space", " \t\r\n" + pre + "\n\"devices\" : [ ] , \"nvml_ms\" :\t-0.0 }\n ", true},
	{"unknown keys skipped", pre + `"x":{"a":[1,{"b":null},"c",true,false,-1.5e+7]},"devices":[],"y":[]}`, true},
	{"case-insensitive keys", `{"SCHEMA_VERSION":1,"Loaded":true,"DeViCeS":[{"INDEX":0}]}`, true},
	{"long s and Kelvin sign fold", "{\"\u017fchema_version\":1,\"loaded\":true,\"devices\":[{\"index\":0,\"health\":{\"cloc\u212a_events\":[\"x\"],\"\\u212aloc\\u212a_event_reasons\":1}}]}", true},
	{"escaped key", `{"\u0073chema_version":1,"loaded":true}`, true},
	{"duplicate keys, last wins", `{"schema_version":2,"schema_version":1,"loaded":false,"loaded":true}`, true},
	{"duplicate objects merge", pre + `"error":{"code":1},"error":{"name":"x"},"cuda":{"init_ms":1},"cuda":{"stage_ms":2}}`, true},
	{"duplicate arrays reuse elements", pre + `"devices":[{"index":0,"name":"a"},{"index":1,"name":"b"}],"devices":[{"index":0}],"devices":[{},{"uuid":"u"}]}`, true},
	{"duplicate maps merge, entries start from zero", pre + `"devices":[{"index":0,"errors":{"a":{"code":1},"a":{"name":"x"}},"errors":{"b":{}},"health":{"pcie_gen":1},"health":{"pcie_width":2}}]}`, true},
	{"map keys as written", pre + "\"devices\":[{\"index\":0,\"errors\":{\"\xff\\u00e9\":null,\"UUID\":{},\"\":{\"code\":-1}}}]}", true},
	{"null leaves a value", pre + `"driver_version":"1","driver_version":null,"nvml_ms":null,"cuda":{"contexts":null}}`, true},
	{"null clears pointers, slices and maps", pre + `"error":{},"error":null,"devices":[{}],"devices":null,"unavailable":null}`, true},
	{"null elements", pre + `"devices":[null,{"index":1}],"unavailable":[null,"x"]}`, true},
	{"escapes", pre + `"panic":"\"\\\/\b\f\n\r\t\u0000\u00e9\ud83d\ude00\ud800\udc00x"}`, true},
	{"lone surrogates", pre + `"panic":"\ud800 \udc00 \ud800\ud800 \udbff\u0041 \ud800\n"}`, true},
	{"invalid UTF-8", pre + "\"panic\":\"\xff\xfe\xc3(\xed\xa0\x80\xf4\x90\x80\x80\"}", true},
	{"numbers", pre + `"cuda_driver_version":-0,"nvml_ms":1E+2,"devices":[{"index":0,"memory_total_bytes":0,"memory_used_bytes":18446744073709551615}]}`, true},
	{"tiny float", pre + `"nvml_ms":1e-400}`, true},
	{"huge float mantissa", pre + `"nvml_ms":0.` + strings.Repeat("9", 800) + `}`, true},
	{"top-level null", `null`, false},

	{"empty", ``, false},
	{"only space", ` `, false},
	{"not json", `this is not json`, false},
	{"top-level array", `[]`, false},
	{"top-level string", `"x"`, false},
	{"top-level number", `1`, false},
	{"trailing garbage", healthy + `x`, false},
	{"second value", healthy + ` {}`, false},
	{"byte order mark", "\xef\xbb\xbf" + healthy, false},
	{"unclosed", pre + `"devices":[`, false},
	{"trailing comma in object", pre + `"devices":[],}`, false},
	{"trailing comma in array", pre + `"devices":[{},]}`, false},
	{"missing colon", pre + `"devices" []}`, false},
	{"single quotes", `{'schema_version':1}`, false},
	{"unquoted key", `{schema_version:1}`, false},
	{"float into int", `{"schema_version":1.5,"loaded":true}`, false},
	{"exponent into int", `{"schema_version":1e0,"loaded":true}`, false},
	{"string into int", `{"schema_version":"1","loaded":true}`, false},
	{"int out of range", pre + `"cuda_driver_version":9223372036854775808}`, false},
	{"negative into uint64", pre + `"devices":[{"index":0,"memory_total_bytes":-1}]}`, false},
	{"minus zero into uint64", pre + `"devices":[{"index":0,"memory_total_bytes":-0}]}`, false},
	{"uint64 out of range", pre + `"devices":[{"index":0,"memory_used_bytes":18446744073709551616}]}`, false},
	{"float out of range", pre + `"nvml_ms":1e400}`, false},
	{"leading zero", pre + `"nvml_ms":01}`, false},
	{"leading plus", pre + `"nvml_ms":+1}`, false},
	{"bare point", pre + `"nvml_ms":1.}`, false},
	{"NaN", pre + `"nvml_ms":NaN}`, false},
	{"string into bool", `{"schema_version":1,"loaded":"true"}`, false},
	{"number into bool", `{"schema_version":1,"loaded":1}`, false},
	{"string where an object is wanted", pre + `"error":"nvmlInit failed"}`, false},
	{"array where an object is wanted", pre + `"cuda":[]}`, false},
	{"object where an array is wanted", pre + `"devices":{}}`, false},
	{"number in a string list", pre + `"unavailable":[1]}`, false},
	{"string into a *bool", pre + `"devices":[{"index":0,"health":{"row_remap_failed":"no"}}]}`, false},
	{"bad escape", pre + `"panic":"\x41"}`, false},
	{"short \\u escape", pre + `"panic":"\u12"}`, false},
	{"control character in string", pre + "\"panic\":\"a\tb\"}", false},
	{"bad literal", pre + `"devices":nul}`, false},
	{"literal with tail", pre + `"devices":nullx}`, false},
	{"type error inside an unknown key is fine, syntax error is not", pre + `"x":[1,2,}`, false},
	{"wrong type after a good report", pre + `"devices":[],"error":5}`, false},
}

func TestDecodeCases(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Errorf("Parse: %v, want ok %v", err, tc.ok)
			}
			sameAsStd(t, []byte(tc.in))
		})
	}
}

func TestDecodeValues(t *testing.T) {
	r, err := Parse([]byte(pre + `"devices":[{"index":0,"name":"a"},{"index":1,"name":"b"}],"devices":[{"index":0}],"devices":[{},{"uuid":"u"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	// The third array decodes into the elements the first left: within the
	// slice's capacity, as reflect grows it.
	if len(r.Devices) != 2 || r.Devices[0].Name != "a" || r.Devices[1].Name != "b" || r.Devices[1].UUID != "u" {
		t.Errorf("devices %+v", r.Devices)
	}
	r, err = Parse([]byte(pre + `"panic":"\ud800\udc00 \ud800 \u00e9 ` + "\xff" + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "\U00010000 \uFFFD é \uFFFD"; r.Panic != want {
		t.Errorf("panic %q, want %q", r.Panic, want)
	}
}

// nested returns a report whose unknown key "x" holds arrays nested so
// that the document is depth deep in all.
func nested(depth int) []byte {
	return []byte(pre + `"x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
}

func TestDecodeDepth(t *testing.T) {
	for _, depth := range []int{2, 100, maxDepth - 1, maxDepth, maxDepth + 1, 3 * maxDepth} {
		_, err := Parse(nested(depth))
		if (err == nil) != (depth <= maxDepth) {
			t.Errorf("depth %d: %v", depth, err)
		}
		sameAsStd(t, nested(depth))
	}
	// Objects count as arrays do, in typed members as in skipped ones.
	deep := pre + `"devices":[{"index":0,"x":` + strings.Repeat(`{"a":`, maxDepth-2) + `1` + strings.Repeat(`}`, maxDepth-2) + `}]}`
	if _, err := Parse([]byte(deep)); err == nil {
		t.Error("depth past the limit accepted")
	}
	sameAsStd(t, []byte(deep))
	sameAsStd(t, []byte(strings.Replace(deep, `{"a":1}`, `1`, 1)))
}

// TestDecodeItemLimit: the one difference from encoding/json, on purpose.
func TestDecodeItemLimit(t *testing.T) {
	list := func(n int) []byte {
		return []byte(pre + `"unavailable":[` + strings.Repeat(`"f",`, n-1) + `"f"]}`)
	}
	if _, err := Parse(list(maxItems)); err != nil {
		t.Errorf("%d items: %v", maxItems, err)
	}
	sameAsStd(t, list(maxItems))
	if _, err := Parse(list(maxItems + 1)); !errors.Is(err, errTooManyItems) {
		t.Errorf("%d items: %v", maxItems+1, err)
	}
	// Repeats count: the budget is for the whole document.
	twice := pre + `"unavailable":["a","b"],"cuda":{"unavailable":[` + strings.Repeat(`"x",`, maxItems-2) + `"x"]}}`
	if _, err := Parse([]byte(twice)); !errors.Is(err, errTooManyItems) {
		t.Errorf("%d items in two lists: %v", maxItems+1, err)
	}
}

// TestDecodeAllocation: whatever a hostile probe prints (up to the 1 MiB
// gpuhelper reads), decoding allocates a small multiple of it.
func TestDecodeAllocation(t *testing.T) {
	const size = 1 << 20
	repeat := func(head, item, tail string) []byte {
		if item == "" {
			return []byte(head + tail)
		}
		return []byte(head + strings.Repeat(item, (size-len(head)-len(tail))/len(item)) + tail)
	}
	inputs := map[string][]byte{
		"empty devices":    repeat(pre+`"devices":[{}`, `,{}`, `]}`),
		"null devices":     repeat(pre+`"devices":[null`, `,null`, `]}`),
		"empty strings":    repeat(pre+`"unavailable":[""`, `,""`, `]}`),
		"map entries":      repeat(pre+`"devices":[{"errors":{`, `"a":{},`, `"a":{}}}]}`),
		"invalid UTF-8":    repeat(pre+`"panic":"`, "\xff", `"}`),
		"escapes":          repeat(pre+`"panic":"`, `\ud800`, `"}`),
		"nested":           repeat(pre+`"x":`+strings.Repeat("[", maxDepth-2), "", strings.Repeat("]", maxDepth-2)+`}`),
		"pointers":         repeat(pre, `"cuda":null,"cuda":{"error":{}},`, `"devices":[]}`),
		"merged structs":   repeat(pre+`"devices":[{"index":0`, `,"health":{"clock_events":[]}`, `}]}`),
		"long keys":        repeat(pre+`"`, `ſ`, `":1}`),
		"long numbers":     repeat(pre+`"nvml_ms":1`, `0`, `}`),
		"long unknown key": repeat(pre+`"x":"`, `\u00e9`, `"}`),
	}
	for name, in := range inputs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var r Report
		err := decodeReport(in, &r)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d bytes in, %d allocated (%.1fx), err %v", name, len(in), alloc, float64(alloc)/float64(len(in)), err)
		if limit := uint64(8 * len(in)); alloc > limit {
			t.Errorf("%s: %d bytes allocated for %d bytes of input", name, alloc, len(in))
		}
	}
}

// FuzzParse: for any input Parse agrees with the encoding/json-based
// Parse, and the decoder with json.Unmarshal: both fail, or both give the
// same Report.
func FuzzParse(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.in))
	}
	for _, s := range []string{
		`{"schema_version":1,"loaded":true,"devices":[{"index":0}]}`,
		`{"schema_version":1,"loaded":false,"error":{"code":12}}`,
		`{"schema_version":2,"loaded":true,"devices":[]}`,
		`{"loaded":true,"devices":[]}`,
		`{"schema_version":1,"loaded":false,"devices":[]}`,
		`{"schema_version":1,"loaded":true,"devices":[{"index":3}]}`,
		`{"schema_version":1,"loaded":true,"devices":[],"cuda":{"device_count":1,"devices":[{"ordinal":3}]}}`,
		`garbage`,
	} {
		f.Add([]byte(s))
	}
	for seed := range 3 {
		r := fullReport(seed * 100)
		b, _ := json.Marshal(r)
		f.Add(b)
		b, _ = json.MarshalIndent(r, "", " ")
		f.Add(b)
	}
	// Deep, but small enough to mutate quickly; TestDecodeDepth tries the
	// limit itself.
	f.Add(nested(200))
	f.Add([]byte(pre + `"devices":[{"index":0,"health":` + strings.Repeat(`{"clock_events":[`, 30) + strings.Repeat(`]}`, 30) + `}]}`))
	f.Add([]byte(pre + `"nvml_ms":1e309,"cuda_driver_version":-9223372036854775809,"devices":[{"index":0,"memory_total_bytes":1.0}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsStd(t, data)
	})
}
