// Package docs_test checks the examples in the documentation against the
// real schemas they are written for. Kubernetes' types are a test-only
// dependency: no binary links them (internal/archtest checks).
package docs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// podExample returns the YAML block of running.md that holds "kind: Pod".
func podExample(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("running.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
		body, _, ok := strings.Cut(block, "```")
		if ok && strings.Contains(body, "kind: Pod") {
			return []byte(body)
		}
	}
	t.Fatal("running.md has no ```yaml block with kind: Pod")
	return nil
}

// decodePod decodes strictly: unknown and duplicate fields fail
// (UnmarshalStrict), and so does a field whose case differs from the API's,
// which encoding/json would otherwise match: every field of the YAML must
// come back, spelt the same, when the decoded Pod is encoded again.
func decodePod(b []byte) (corev1.Pod, error) {
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(b, &pod); err != nil {
		return pod, err
	}
	var in, out any
	if err := yaml.Unmarshal(b, &in); err != nil {
		return pod, err
	}
	enc, err := json.Marshal(pod)
	if err != nil {
		return pod, err
	}
	if err := json.Unmarshal(enc, &out); err != nil {
		return pod, err
	}
	return pod, covered("", in, out)
}

// covered reports the first field of in that out lacks or holds otherwise.
func covered(path string, in, out any) error {
	switch v := in.(type) {
	case map[string]any:
		o, ok := out.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: not an object after decoding", path)
		}
		for k, x := range v {
			y, ok := o[k]
			if !ok {
				return fmt.Errorf("%s.%s: no such field (was it misspelt?)", path, k)
			}
			if err := covered(path+"."+k, x, y); err != nil {
				return err
			}
		}
	case []any:
		o, ok := out.([]any)
		if !ok || len(o) != len(v) {
			return fmt.Errorf("%s: list changed in decoding", path)
		}
		for i := range v {
			if err := covered(fmt.Sprintf("%s[%d]", path, i), v[i], o[i]); err != nil {
				return err
			}
		}
	default:
		if fmt.Sprint(in) != fmt.Sprint(out) {
			return fmt.Errorf("%s: %v became %v", path, in, out)
		}
	}
	return nil
}

func TestPodExampleDecodesStrictly(t *testing.T) {
	pod, err := decodePod(podExample(t))
	if err != nil {
		t.Fatalf("the Pod in running.md does not decode strictly: %v", err)
	}
	if pod.Kind != "Pod" || pod.APIVersion != "v1" || len(pod.Spec.Containers) != 1 {
		t.Fatalf("not one v1 Pod with one container: %s %s, %d containers", pod.APIVersion, pod.Kind, len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 1000 {
		t.Errorf("runAsUser is not 1000: %+v", pod.Spec.SecurityContext)
	}
	if q, ok := c.Resources.Limits["nvidia.com/gpu"]; !ok || q.Cmp(resource.MustParse("1")) != 0 {
		t.Errorf("no nvidia.com/gpu limit of 1: %v", c.Resources.Limits)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]corev1.Volume{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("volumeMount %s names no volume", m.Name)
		}
		mounts[m.MountPath] = v
	}
	if shm := mounts["/dev/shm"].EmptyDir; shm == nil || shm.Medium != corev1.StorageMediumMemory || shm.SizeLimit == nil || shm.SizeLimit.Cmp(resource.MustParse("256Mi")) < 0 {
		t.Errorf("/dev/shm is not a memory emptyDir of at least 256Mi: %+v", mounts["/dev/shm"])
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	home := env["HF_HOME"].Value
	if home != "/workspace/.hf_cache" {
		t.Errorf("HF_HOME=%q, want /workspace/.hf_cache", home)
	}
	if v, ok := mounts[home]; !ok || v.PersistentVolumeClaim == nil {
		t.Errorf("no persistent volume at HF_HOME=%s: %+v", home, v)
	}
	if tok := env["HF_TOKEN"].ValueFrom; tok == nil || tok.SecretKeyRef == nil {
		t.Errorf("HF_TOKEN does not come from a Secret: %+v", env["HF_TOKEN"])
	}
}

// TestStrictDecodingCatchesMisspeltFields: the decoder above is strict, so
// a misspelt field in the example fails the test instead of vanishing.
func TestStrictDecodingCatchesMisspeltFields(t *testing.T) {
	good := podExample(t)
	for _, c := range []struct{ from, to string }{
		{"mountPath:", "mountpath:"},
		{"runAsUser:", "runAsUid:"},
		{"medium: Memory", "medium: Memory\n        sizelimit: 1Gi"},
		{"limits:", "limit:"},
		{"claimName: nss-data", "claimName: nss-data\n        claimname: x"},
		{"secretKeyRef:", "secretKeyref:"},
	} {
		bad := bytes.Replace(good, []byte(c.from), []byte(c.to), 1)
		if bytes.Equal(bad, good) {
			t.Fatalf("%q is not in the example", c.from)
		}
		if _, err := decodePod(bad); err == nil {
			t.Errorf("%q -> %q decoded without an error", c.from, c.to)
		}
	}
}
