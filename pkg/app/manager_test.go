package app

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Of a namespace, the cache keeps its name and labels only.
func TestNamespaceNameAndLabels(t *testing.T) {
	ns := namespaceMeta()
	ns.Name, ns.ResourceVersion, ns.UID = "team-a", "42", "0b5e"
	ns.Labels = map[string]string{"kubernetes.io/metadata.name": "team-a", "team": "a"}
	ns.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"a":"long document"}`}
	ns.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	ns.Finalizers = []string{"kubernetes"}
	out, err := namespaceNameAndLabels(ns)
	require.NoError(t, err)
	kept := out.(*metav1.PartialObjectMetadata)
	assert.Equal(t, "Namespace", kept.Kind)
	assert.Equal(t, metav1.ObjectMeta{Name: "team-a", ResourceVersion: "42", Labels: ns.Labels}, kept.ObjectMeta)
}
