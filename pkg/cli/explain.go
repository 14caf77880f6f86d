package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/plan"
)

// explainCmd holds explain's flags.
type explainCmd struct {
	kube   kubeFlags
	server serverFlags
	file   string
	output string
	// configFile is a config file to explain with instead of the live one.
	configFile string
	// storedIn is where the config file's config is stored (--stored-in).
	storedIn string
	nsLabels string
	// kind and name are the object named on the command line.
	kind, name string
	// reader, when set (by tests), is the cluster.
	reader client.Reader
	// manifestNamespaces are the labels of the Namespaces -f defines.
	manifestNamespaces map[string]map[string]string
	// changed reports whether a flag was given.
	changed func(string) bool
}

func newExplain() *cobra.Command { return explainCommand(&explainCmd{}) }

// explainCommand builds the explain command on e.
func explainCommand(e *explainCmd) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "explain (TYPE NAME | TYPE/NAME | -f FILE) [-n NAMESPACE]",
		Short: "Explain which pull secrets a Pod or a workload's Pods get, and why",
		Long: `Explain, per image, which registry serves it, which pull secret it gets, and
whether regcred injects it or why not: the webhook's own decision (the same
code), for an existing Pod, a workload's Pod template (deployment,
statefulset, daemonset, replicaset, job, cronjob), or the Pods and workloads
of a manifest (-f), which need not exist yet.

It reads the object, its namespace's labels and the live registry config
from the cluster, as the webhook does, and no credential: the Secrets the
config names are not read. The config's ConfigMap or Secret, this cluster's
name and the excluded namespaces are taken from the args of regcred's
Deployment in --regcred-namespace, unless given with --config-configmap or
--config-secret (and --config-key), --cluster-name and --exclude-namespaces.
With --config-file and -f it works offline (--namespace-labels gives the
namespace's labels).

For an existing Pod it also tells which of its imagePullSecrets regcred
injected (the annotation regcred.io/injected), and whether today's config
would decide otherwise.

It takes kubectl's flags to reach the cluster (--kubeconfig, --context,
--cluster, --user, -n), and runs as a kubectl plugin named kubectl-regcred.`,
		Example: `  # Why did this Pod get (or not get) its pull secrets?
  regcred explain pod web-7d9c4 -n shop

  # What would this Deployment's Pods get?
  regcred explain deployment/web -n shop

  # A manifest not applied yet, as JSON
  regcred explain -f app.yaml -n shop -o json

  # Offline: a manifest, a config file, and the namespace's labels
  regcred explain -f app.yaml --config-file config.yaml --cluster-name prod-eu --namespace-labels team=a

  # As a kubectl plugin (the binary on PATH as kubectl-regcred)
  kubectl regcred explain pod web-7d9c4 -n shop --context prod`,
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case e.file != "" && len(args) > 0:
				return usageError{errors.New("explain either TYPE NAME or -f FILE, not both")}
			case e.file == "" && len(args) == 0:
				return usageError{errors.New("name what to explain: TYPE NAME, TYPE/NAME or -f FILE")}
			case e.file == "":
				var err error
				e.kind, e.name, err = parseRef(args)
				return err
			}
			return nil
		},
	}
	fs := cmd.Flags()
	e.kube.bind(fs)
	e.server.bind(fs)
	fs.StringVarP(&e.file, "filename", "f", "", "A manifest of Pods or workloads (YAML or JSON, one or more documents); - reads standard input.")
	fs.StringVarP(&e.output, "output", "o", "text", "Output format: text or json.")
	fs.StringVar(&e.configFile, "config-file", "", "Explain with this config file (a RegistryConfig, a ConfigMap or Secret manifest, or the chart's values) instead of the live one.")
	bindStoredIn(fs, &e.storedIn, "for a bare config configmap. Only with --config-file")
	fs.StringVar(&e.nsLabels, "namespace-labels", "", "The namespace's labels (k=v,k2=v2) instead of reading them from the cluster.")
	e.changed = fs.Changed
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(e.output); err != nil {
			return err
		}
		if err := checkStoredIn(e.storedIn); err != nil {
			return err
		}
		if e.storedIn != "" && e.configFile == "" {
			return usageError{errors.New("--stored-in: only with --config-file (the live config is stored where regcred reads it)")}
		}
		return e.run(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return cmd
}

// offline reports whether explain needs no cluster: a manifest and a
// config file.
func (e *explainCmd) offline() bool { return e.file != "" && e.configFile != "" }

// cluster returns the cluster's client.
func (e *explainCmd) cluster() (client.Reader, error) {
	if e.reader != nil {
		return e.reader, nil
	}
	return e.kube.client()
}

func (e *explainCmd) run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	nsLabels, err := labels.ConvertSelectorToLabelsMap(e.nsLabels)
	if err != nil {
		return usageError{fmt.Errorf("--namespace-labels: %w", err)}
	}
	if e.file == "-" && e.configFile == "-" {
		return usageError{errors.New("-f - and --config-file -: only one can read standard input")}
	}
	namespace, err := e.namespace()
	if err != nil {
		return err
	}
	var c client.Reader
	if !e.offline() {
		if c, err = e.cluster(); err != nil {
			return err
		}
	}

	// What to explain.
	var targets []*target
	if e.file != "" {
		targets, err = e.readManifest(stdin, namespace)
	} else {
		var t *target
		t, err = getTarget(ctx, c, e.kind, namespace, e.name)
		targets = []*target{t}
	}
	if err != nil {
		return err
	}

	// With what config.
	cfg, err := e.config(ctx, c, stdin)
	if err != nil {
		return err
	}
	if len(cfg.problems) > 0 {
		if e.configFile != "" {
			fmt.Fprintf(stderr, "The config in %s has problems:\n", cfg.source)
		} else {
			fmt.Fprintf(stderr, "The config in %s is rejected; regcred keeps serving its last good config, which explain cannot read (see regcred's status ConfigMap):\n", cfg.source)
		}
		for _, p := range cfg.problems {
			fmt.Fprintf(stderr, "  %s\n", p.Error())
		}
		return errProblems
	}
	opts := e.server.options()
	ex := opts.Exclusions()

	results := make([]explainResult, 0, len(targets))
	for _, t := range targets {
		ns, note := e.namespaceOf(ctx, c, t.Namespace, nsLabels)
		saNote := serviceAccountSecrets(ctx, c, t)
		res := explain(cfg.set, t, ns, ex, e.server.clusterName)
		res.Config = cfg.source
		for _, n := range []string{saNote, note, cfg.note} {
			if n != "" {
				res.Notes = append([]string{n}, res.Notes...)
			}
		}
		results = append(results, res)
	}
	return e.print(stdout, results)
}

// serviceAccountSecrets does what the API server's ServiceAccount admission
// does before regcred sees a Pod: a Pod that names no imagePullSecrets
// gets those of its ServiceAccount. Only for a Pod not created yet (a
// workload's template, a manifest): a Pod in the cluster has them already.
// It returns a note for the reader, if any.
func serviceAccountSecrets(ctx context.Context, c client.Reader, t *target) string {
	if c == nil || (t.Live && t.Kind == "Pod") || len(t.Pod.Spec.ImagePullSecrets) > 0 {
		return ""
	}
	name := t.Pod.Spec.ServiceAccountName
	if name == "" {
		name = "default"
	}
	var sa corev1.ServiceAccount
	switch err := c.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: name}, &sa); {
	case apierrors.IsNotFound(err) && name == "default":
		return "" // the ServiceAccount controller makes it with the namespace
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("ServiceAccount %q does not exist in namespace %q yet: the Pod cannot be created until it does", name, t.Namespace)
	case err != nil:
		return fmt.Sprintf("cannot read ServiceAccount %q (%s): its imagePullSecrets, which the API server adds to a Pod that names none, are left out", name, apierrors.ReasonForError(err))
	case len(sa.ImagePullSecrets) == 0:
		return ""
	}
	var names []string
	for _, s := range sa.ImagePullSecrets {
		t.Pod.Spec.ImagePullSecrets = append(t.Pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s.Name})
		names = append(names, s.Name)
	}
	return fmt.Sprintf("the Pod names no imagePullSecrets: the API server adds ServiceAccount %q's (%s) before regcred sees it", name, strings.Join(names, ", "))
}

// namespace is the namespace of the object named, and of a manifest's
// objects that name none: -n, else the kubeconfig context's, else default.
func (e *explainCmd) namespace() (string, error) {
	if ns := e.kube.overrides.Context.Namespace; ns != "" {
		return ns, nil
	}
	if e.reader != nil {
		return metav1.NamespaceDefault, nil // tests: no kubeconfig
	}
	ns, _, err := e.kube.namespace()
	if err != nil && e.offline() {
		return metav1.NamespaceDefault, nil
	}
	return ns, err
}

// print prints the results: one JSON object for one, a list for more.
func (e *explainCmd) print(w io.Writer, results []explainResult) error {
	if e.output == "json" {
		if len(results) == 1 {
			return printJSON(w, results[0])
		}
		return printJSON(w, results)
	}
	for i, res := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := printExplanation(w, res); err != nil {
			return err
		}
	}
	return nil
}

// readManifest reads the targets of -f; those without a namespace are in
// namespace.
func (e *explainCmd) readManifest(stdin io.Reader, namespace string) ([]*target, error) {
	r := stdin
	if e.file != "-" {
		f, err := os.Open(e.file)
		if err != nil {
			return nil, err
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	targets, namespaces, err := readTargets(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.file, err)
	}
	e.manifestNamespaces = namespaces
	for _, t := range targets {
		if t.Namespace == "" {
			t.Namespace = namespace
			t.Pod.Namespace = namespace
		}
	}
	return targets, nil
}

// namespaceOf reads what the plan needs of a namespace: --namespace-labels,
// else its labels from the cluster (offline: only its name label, as the
// API server sets it). When it cannot read them, the labels are unknown,
// as they are to the webhook then, and the note says why.
func (e *explainCmd) namespaceOf(ctx context.Context, c client.Reader, name string, given labels.Set) (plan.Namespace, string) {
	ns := plan.Namespace{Name: name, Labels: map[string]string{corev1.LabelMetadataName: name}}
	if defined, ok := e.manifestNamespaces[name]; ok && e.nsLabels == "" {
		// What kubectl apply of the manifest makes it: the labels it
		// gives over those the namespace has already, which apply keeps.
		if c != nil {
			var obj corev1.Namespace
			if err := c.Get(ctx, client.ObjectKey{Name: name}, &obj); err == nil {
				for k, v := range obj.Labels {
					ns.Labels[k] = v
				}
			}
		}
		for k, v := range defined {
			ns.Labels[k] = v
		}
		return ns, fmt.Sprintf("namespace %q as this manifest defines it (its labels over those it has in the cluster, if it is there)", name)
	}
	if e.nsLabels != "" || c == nil {
		for k, v := range given {
			ns.Labels[k] = v
		}
		return ns, ""
	}
	var obj corev1.Namespace
	switch err := c.Get(ctx, client.ObjectKey{Name: name}, &obj); {
	case err == nil:
		ns.Labels = obj.Labels
		return ns, ""
	case apierrors.IsNotFound(err):
		ns.Labels, ns.LabelsUnknown = nil, true
		return ns, fmt.Sprintf("namespace %q does not exist: a Pod cannot be created there yet", name)
	default:
		ns.Labels, ns.LabelsUnknown = nil, true
		return ns, fmt.Sprintf("cannot read namespace %q (%s): registries with a namespaceSelector are shown as the webhook treats them when it cannot read its labels (fail closed); --namespace-labels gives them", name, apierrors.ReasonForError(err))
	}
}
