package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnserved(t *testing.T) {
	set := testSet(t)
	for _, tc := range []struct {
		name string
		pod  Pod
		ns   Namespace
		// notCarried are planned secrets the handler could not inject.
		notCarried []string
		want       []Miss
	}{
		{name: "everything served: nothing to say", pod: Pod{Images: []string{"quay.io/a", "myorg/app"}}, ns: ns("app")},
		{name: "a public image: said, for the log only",
			pod: Pod{Images: []string{"nginx", "quay.io/a"}}, ns: ns("app"),
			want: []Miss{{Image: "nginx", Host: "docker.io", Reason: NoRegistry}}},
		{name: "policy and spelling",
			pod: Pod{Images: []string{"prod.example.com/x", "team-a.example.com/y", "Quay.io/z", "UPPER/Case:bad"}}, ns: ns("app"),
			want: []Miss{
				{Image: "prod.example.com/x", Host: "prod.example.com", Registry: "prod-only", Reason: ClusterPolicy},
				{Image: "team-a.example.com/y", Host: "team-a.example.com", Registry: "team-a", Reason: NamespaceNotSelected},
				{Image: "Quay.io/z", Host: "Quay.io", Reason: HostCase},
				{Image: "UPPER/Case:bad", Reason: InvalidReference},
			}},
		{name: "the same image twice is said once",
			pod: Pod{Images: []string{"prod.example.com/x", "prod.example.com/x"}}, ns: ns("app"),
			want: []Miss{{Image: "prod.example.com/x", Host: "prod.example.com", Registry: "prod-only", Reason: ClusterPolicy}}},
		{name: "a planned secret the Pod could not carry",
			pod: Pod{Images: []string{"quay.io/a"}}, ns: ns("app"), notCarried: []string{"regcred-quay"},
			want: []Miss{{Image: "quay.io/a", Host: "quay.io", Registry: "quay", Reason: NotCarried}}},
		{name: "shadowed by another secret's keys",
			pod: Pod{Images: []string{"harbor.example.com/team-a", "harbor.example.com/team-ab/app"}}, ns: ns("app"),
			want: []Miss{{Image: "harbor.example.com/team-ab/app", Host: "harbor.example.com", Registry: "harbor", Reason: KubeletTriesOther}}},
		{name: "the main secret tried first holds the same registry's credentials",
			pod: Pod{Images: []string{"harbor.example.com/team-a/app", "harbor.example.com/team-a"}, PullSecrets: []string{"regcred-harbor-a"}}, ns: ns("app")},
		{name: "a whole Pod skipped", pod: Pod{Images: []string{"quay.io/a"}, Labels: map[string]string{"regcred.io/inject": "false"}}, ns: ns("app"),
			want: []Miss{{Reason: PodOptedOut}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ForPod(set, tc.pod, tc.ns, excluded)
			var final []string
			final = append(final, tc.pod.PullSecrets...)
			for _, a := range p.Add {
				skip := false
				for _, n := range tc.notCarried {
					skip = skip || n == a.Secret
				}
				if !skip {
					final = append(final, a.Secret)
				}
			}
			got := Unserved(p, KubeletFirst(set, tc.pod.Images, final), final)
			for i := range got {
				got[i].Detail = ""
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
