package plan

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLacking(t *testing.T) {
	set := testSet(t)
	app := ns("app")
	type lack struct{ image, registry, secret string }
	for _, tc := range []struct {
		name    string
		pod     Pod
		failing []string
		ns      Namespace
		want    []lack
	}{
		{name: "served registry, secret missing", pod: Pod{Images: []string{"quay.io/a/b"}}, failing: []string{"quay.io/a/b"}, ns: app,
			want: []lack{{"quay.io/a/b", "quay", "regcred-quay"}}},
		{name: "the Pod carries the secret: not ours (a wrong password)", pod: Pod{Images: []string{"quay.io/a/b"}, PullSecrets: []string{"regcred-quay"}},
			failing: []string{"quay.io/a/b"}, ns: app},
		{name: "an image no registry serves", pod: Pod{Images: []string{"ghcr.io/x/y"}}, failing: []string{"ghcr.io/x/y"}, ns: app},
		{name: "an invalid reference", pod: Pod{Images: []string{"UPPER/Case"}}, failing: []string{"UPPER/Case"}, ns: app},
		{name: "host in another case", pod: Pod{Images: []string{"Quay.io/a/b"}}, failing: []string{"Quay.io/a/b"}, ns: app},
		{name: "no image failed", pod: Pod{Images: []string{"quay.io/a/b"}}, ns: app},
		{name: "only the failing image counts", pod: Pod{Images: []string{"quay.io/a/b", "myorg/x"}}, failing: []string{"myorg/x"}, ns: app,
			want: []lack{{"myorg/x", "hub", "regcred-hub"}}},
		{name: "a failing name the Pod does not have", pod: Pod{Images: []string{"quay.io/a/b"}}, failing: []string{"quay.io/c/d"}, ns: app},
		{name: "two failing images, two registries, in the Pod's order", pod: Pod{Images: []string{"myorg/x", "quay.io/a/b"}},
			failing: []string{"quay.io/a/b", "myorg/x"}, ns: app,
			want: []lack{{"myorg/x", "hub", "regcred-hub"}, {"quay.io/a/b", "quay", "regcred-quay"}}},
		{name: "two failing images of one registry", pod: Pod{Images: []string{"quay.io/a/b", "quay.io/c/d"}},
			failing: []string{"quay.io/a/b", "quay.io/c/d"}, ns: app,
			want: []lack{{"quay.io/a/b", "quay", "regcred-quay"}, {"quay.io/c/d", "quay", "regcred-quay"}}},
		{name: "the same image twice is reported once", pod: Pod{Images: []string{"quay.io/a/b", "quay.io/a/b"}},
			failing: []string{"quay.io/a/b", "quay.io/a/b"}, ns: app,
			want: []lack{{"quay.io/a/b", "quay", "regcred-quay"}}},
		{name: "one registry's secret carried, another's missing", pod: Pod{Images: []string{"quay.io/a/b", "myorg/x"}, PullSecrets: []string{"regcred-quay"}},
			failing: []string{"quay.io/a/b", "myorg/x"}, ns: app,
			want: []lack{{"myorg/x", "hub", "regcred-hub"}}},
		{name: "the admin's secret (image-pull-secret mode)", pod: Pod{Images: []string{"admin.example.com/x"}}, failing: []string{"admin.example.com/x"}, ns: app,
			want: []lack{{"admin.example.com/x", "admin", "admin-pull"}}},
		{name: "the admin's secret, carried", pod: Pod{Images: []string{"admin.example.com/x"}, PullSecrets: []string{"admin-pull"}},
			failing: []string{"admin.example.com/x"}, ns: app},
		{name: "the exact variant", pod: Pod{Images: []string{"harbor.example.com/team-a:1"}}, failing: []string{"harbor.example.com/team-a:1"}, ns: app,
			want: []lack{{"harbor.example.com/team-a:1", "harbor-a", "regcred-harbor-a.exact"}}},
		{name: "the main secret does not stand for the exact variant", pod: Pod{Images: []string{"harbor.example.com/team-a:1"}, PullSecrets: []string{"regcred-harbor-a"}},
			failing: []string{"harbor.example.com/team-a:1"}, ns: app,
			want: []lack{{"harbor.example.com/team-a:1", "harbor-a", "regcred-harbor-a.exact"}}},
		// Policies: what the webhook would not inject, recovery does not
		// ask for.
		{name: "cluster policy leaves this cluster out", pod: Pod{Images: []string{"prod.example.com/x"}}, failing: []string{"prod.example.com/x"}, ns: app},
		{name: "namespace not selected", pod: Pod{Images: []string{"team-a.example.com/x"}}, failing: []string{"team-a.example.com/x"}, ns: ns("b1", "team", "b")},
		{name: "namespace selected", pod: Pod{Images: []string{"team-a.example.com/x"}}, failing: []string{"team-a.example.com/x"}, ns: ns("a1", "team", "a"),
			want: []lack{{"team-a.example.com/x", "team-a", "regcred-team-a"}}},
		{name: "namespace labels unknown, scoped registry", pod: Pod{Images: []string{"team-a.example.com/x"}}, failing: []string{"team-a.example.com/x"},
			ns: Namespace{Name: "a1", LabelsUnknown: true}},
		{name: "kube-system", pod: Pod{Images: []string{"quay.io/a/b"}}, failing: []string{"quay.io/a/b"}, ns: ns("kube-system")},
		{name: "regcred's namespace", pod: Pod{Images: []string{"quay.io/a/b"}}, failing: []string{"quay.io/a/b"}, ns: ns("regcred")},
		{name: "admin-excluded namespace", pod: Pod{Images: []string{"quay.io/a/b"}}, failing: []string{"quay.io/a/b"}, ns: ns("monitoring")},
		{name: "namespace opted out", pod: Pod{Images: []string{"quay.io/a/b"}}, failing: []string{"quay.io/a/b"}, ns: ns("quiet", LabelInject, "false")},
		{name: "Pod opted out", pod: Pod{Images: []string{"quay.io/a/b"}, Labels: map[string]string{LabelInject: "false"}}, failing: []string{"quay.io/a/b"}, ns: app},
		{name: "no images", pod: Pod{}, failing: []string{"quay.io/a/b"}, ns: app},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []lack
			for _, l := range Lacking(set, tc.pod, tc.failing, tc.ns, excluded) {
				got = append(got, lack{l.Image, l.Registry.Name, l.Secret})
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// Lacking reports exactly the failing images for which the webhook would
// inject a secret into the same Pod now.
func TestLackingAgreesWithForPod(t *testing.T) {
	set := testSet(t)
	lacked := 0
	for _, n := range []Namespace{ns("app"), ns("a1", "team", "a"), ns("kube-system"), ns("quiet", LabelInject, "false")} {
		for _, r := range set.Registries {
			host := strings.ReplaceAll(r.Location.Host, "*", "x")
			img := host + "/img"
			if r.Location.Prefix != "" {
				img = host + "/" + r.Location.Prefix + "/img"
			}
			pod := Pod{Images: []string{img}}
			p := ForPod(set, pod, n, excluded)
			lacks := Lacking(set, pod, pod.Images, n, excluded)
			assert.Equal(t, len(p.Add), len(lacks), "%s in %s", r.Name, n.Name)
			lacked += len(lacks)
		}
	}
	assert.NotZero(t, lacked, "some registries serve these namespaces")
}
