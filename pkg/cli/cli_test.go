package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(t.Context(), args, strings.NewReader(""), &out, &errOut)
	if err != nil {
		code = ExitCode(err)
		if !Printed(err) {
			errOut.WriteString(err.Error())
		}
	}
	return out.String(), errOut.String(), code
}

// runAs runs the command line as the program named program.
func runAs(t *testing.T, program string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := RunAs(t.Context(), program, args, strings.NewReader(""), &out, &errOut)
	if err != nil {
		code = ExitCode(err)
		if !Printed(err) {
			errOut.WriteString(err.Error())
		}
	}
	return out.String(), errOut.String(), code
}

// Help, however asked for, exits 0 and prints kubectl-style usage with
// examples and flags.
func TestHelpExitsZero(t *testing.T) {
	commands := []string{"serve", "node-agent", "explain", "validate", "match", "check", "render", "version"}
	cases := [][]string{{"--help"}, {"-h"}, {"help"}}
	for _, c := range commands {
		cases = append(cases, []string{c, "--help"}, []string{c, "-h"}, []string{"help", c})
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := runCLI(t, args...)
			assert.Equal(t, 0, code, errOut)
			assert.Empty(t, errOut)
			assert.Contains(t, out, "Usage:\n  regcred")
			assert.Contains(t, out, "\nExamples:\n  ")
			assert.Contains(t, out, "\nFlags:\n")
		})
	}
}

func TestRootHelpListsEveryCommand(t *testing.T) {
	out, _, code := runCLI(t, "--help")
	require.Equal(t, 0, code)
	for _, c := range []string{"serve", "node-agent", "explain", "validate", "match", "check", "render", "version", "completion"} {
		assert.Contains(t, out, "\n  "+c+" ", c)
	}
	assert.NotContains(t, out, "--config-configmap string", "the server's flags are in serve --help")

	out, _, code = runCLI(t, "serve", "--help")
	require.Equal(t, 0, code)
	for _, f := range []string{"--kubeconfig", "--config-configmap", "--config-secret", "--exclude-namespaces", "--zap-log-level", "--zap-devel", "--webhook-port"} {
		assert.Contains(t, out, f)
	}
}

// Mistakes in the command line exit 2 with a short message that points
// at --help.
func TestUsageErrorsExitTwo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
		help string
	}{
		{[]string{"nope"}, `unknown command "nope" for "regcred"`, "regcred --help"},
		{[]string{"validat"}, `did you mean "validate"?`, "regcred --help"},
		{[]string{"validate", "--bogus"}, "unknown flag: --bogus", "regcred validate --help"},
		{[]string{"validate"}, "-f FILE is required", "regcred validate --help"},
		{[]string{"validate", "-f", "testdata/good.yaml", "extra"}, `unexpected argument "extra"`, "regcred validate --help"},
		{[]string{"validate", "-f", "testdata/good.yaml", "-o", "yaml"}, `-o "yaml": must be text or json`, "regcred validate --help"},
		{[]string{"validate", "-f", "testdata/good.yaml", "--stored-in", "etcd"}, `--stored-in "etcd": must be configmap or secret`, "regcred validate --help"},
		{[]string{"validate", "-f"}, "flag needs an argument", "regcred validate --help"},
		{[]string{"match", "-f", "testdata/good.yaml"}, "name at least one IMAGE", "regcred match --help"},
		{[]string{"check", "-f", "testdata/good.yaml", "--timeout", "0s"}, "--timeout 0s: must be positive", "regcred check --help"},
		{[]string{"check", "-f", "testdata/good.yaml", "--timeout", "soon"}, `invalid argument "soon"`, "regcred check --help"},
		{[]string{"render", "-f", "testdata/good.yaml", "--registry", "nope"}, `no registry named "nope"`, "regcred render --help"},
		{[]string{"render", "-f", "testdata/good.yaml", "-o", "text"}, `-o "text": must be json`, "regcred render --help"},
		{[]string{"render", "-f", "testdata/good.yaml", "--cluster", "prod-eu"}, "unknown flag: --cluster", "regcred render --help"},
		{[]string{"check", "-f", "testdata/good.yaml", "--cluster", "prod-eu"}, "unknown flag: --cluster", "regcred check --help"},
		{[]string{"check", "-f", "testdata/good.yaml", "--registry", "hub", "--all"}, "--registry and --all: check one registry or all of them, not both", "regcred check --help"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`, "regcred version --help"},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`, "regcred serve --help"},
		{[]string{"serve", "--webhook-port", "0", "--config-configmap", "c"}, "--webhook-port 0: must be from 1 to 65535", "regcred serve --help"},
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag", "regcred --help"},
		{[]string{"node-agent", "--node-name="}, "--node-name (or $NODE_NAME) is required", "regcred node-agent --help"},
		{[]string{"node-agent", "--node-name=n", "--certs-dir=certs.d"}, `--certs-dir "certs.d": must be an absolute path`, "regcred node-agent --help"},
		{[]string{"explain"}, "name what to explain: TYPE NAME, TYPE/NAME or -f FILE", "regcred explain --help"},
		{[]string{"explain", "pod"}, "name the object: pod NAME, or pod/NAME", "regcred explain --help"},
		{[]string{"explain", "service/web"}, `"service": explain reads a pod, deployment, statefulset, daemonset, replicaset, job or cronjob`, "regcred explain --help"},
		{[]string{"explain", "pod", "a", "b"}, "explain one object", "regcred explain --help"},
		{[]string{"explain", "pod/a", "-f", "x.yaml"}, "not both", "regcred explain --help"},
		{[]string{"explain", "-f", "x.yaml", "--config-file", "c.yaml", "-o", "wide"}, `-o "wide": must be text or json`, "regcred explain --help"},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh" for "regcred completion"`, "regcred completion --help"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			assert.Equal(t, 2, code, errOut)
			assert.Empty(t, out)
			assert.Contains(t, errOut, tc.msg)
			assert.Contains(t, errOut, "See '"+tc.help+"' for usage.\n")
			assert.LessOrEqual(t, strings.Count(errOut, "\n"), 4, "a short message, not the whole usage")
		})
	}
}

// regcred with no command, or serve, runs the webhook server with every
// flag it had, Go-style single-dash spellings included: here it gets as
// far as loading the kubeconfig.
func TestServeTakesItsFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--kubeconfig", "/nonexistent/kubeconfig", "--config-configmap", "c", "--zap-log-level=debug", "--zap-devel", "--exclude-namespaces", "a,b", "--leader-elect=false"},
		{"serve", "--kubeconfig=/nonexistent/kubeconfig", "--config-secret=c", "--config-key", "k"},
		{"-kubeconfig", "/nonexistent/kubeconfig", "-config-configmap=c", "-zap-log-level=debug", "-leader-elect=false"},
		{"serve", "-kubeconfig=/nonexistent/kubeconfig", "-config-configmap", "c"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, args...)
			assert.Equal(t, 1, code)
			assert.Contains(t, errOut, "loading kubeconfig")
		})
	}
}

func TestGoStyleServeFlags(t *testing.T) {
	root := newRoot(false, nil, io.Discard, io.Discard)
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-zap-log-level=debug", "-h"}, []string{"--zap-log-level=debug", "-h"}},
		{[]string{"serve", "-kubeconfig", "k", "-help"}, []string{"serve", "--kubeconfig", "k", "--help"}},
		{[]string{"--namespace", "x", "-unknown"}, []string{"--namespace", "x", "-unknown"}},
		{[]string{"-config-key", "k", "--", "-namespace"}, []string{"--config-key", "k", "--", "-namespace"}},
		{[]string{"validate", "-f", "x", "-namespace", "y"}, []string{"validate", "-f", "x", "-namespace", "y"}},
	} {
		assert.Equal(t, tc.want, goStyleServeFlags(root, tc.in), tc.in)
	}
	assert.Equal(t, []string{"-namespace"}, goStyleServeFlags(newRoot(true, nil, io.Discard, io.Discard), []string{"-namespace"}), "the plugin has no server flags")
}

// Named kubectl-regcred, the binary is a kubectl plugin: its usage reads
// kubectl regcred, and with no command it prints its help.
func TestKubectlPlugin(t *testing.T) {
	assert.True(t, IsPlugin("/usr/local/bin/kubectl-regcred"))
	assert.True(t, IsPlugin(`kubectl-regcred.exe`))
	assert.False(t, IsPlugin("/usr/local/bin/regcred"))

	out, errOut, code := runAs(t, "/usr/local/bin/kubectl-regcred")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Usage:\n  kubectl regcred [flags]\n  kubectl regcred [command]\n")
	assert.Contains(t, out, "kubectl regcred explain pod")
	assert.NotContains(t, out, "\n  serve ")
	assert.NotContains(t, out, "\n  node-agent ")

	out, _, code = runAs(t, "kubectl-regcred", "validate", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "Usage:\n  kubectl regcred validate -f FILE")
	assert.Contains(t, out, "  kubectl regcred validate -f config.yaml")

	_, errOut, code = runAs(t, "kubectl-regcred", "explian")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "See 'kubectl regcred --help' for usage.")
}

// Shell completion comes with the command line.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, errOut, code := runCLI(t, "completion", shell)
		assert.Equal(t, 0, code, errOut)
		assert.Contains(t, out, "regcred", shell)
	}
}
