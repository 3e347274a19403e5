package diagnose

import (
	"strings"
	"testing"
)

// pasted stands for a token pasted in the wrong place on the command line.
const pasted = "hf_PASTEDbyMISTAKEabcdefghijklmn"

func TestUsageErrorsDoNotEchoArguments(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"--format", pasted}, "--format must be text, json or markdown"},
		{[]string{"--format=" + pasted}, "--format must be text, json or markdown"},
		{[]string{"--timeout", pasted}, "--timeout must be a positive duration"},
		{[]string{"--timeout=-1s"}, "--timeout must be a positive duration"},
		{[]string{"--verbose=" + pasted}, "--verbose: not a valid value"},
		{[]string{"--" + pasted}, "unknown flag (argument 1)"},
		{[]string{"--verbose", "-" + pasted + "=x"}, "unknown flag (argument 2)"},
		{[]string{"--strict", pasted}, "unexpected argument (argument 2)"},
		{[]string{"--format"}, "--format needs a value"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := Diagnose(tc.args, nil, &stdout, &stderr, false, false)
			if code != DiagnoseUsage {
				t.Errorf("exit %d, want %d", code, DiagnoseUsage)
			}
			if !strings.Contains(stderr.String(), tc.msg) || !strings.Contains(stderr.String(), "usage: nss-entrypoint --diagnose") {
				t.Errorf("stderr %q, want %q and the usage", stderr.String(), tc.msg)
			}
			if strings.Contains(stderr.String()+stdout.String(), "PASTED") || stdout.Len() > 0 {
				t.Errorf("the argument is echoed, or stdout written: stdout %q stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}
