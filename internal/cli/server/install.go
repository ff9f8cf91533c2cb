package server

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-dev/petrel/internal/cli/factory"
)

// UnitName is the file name of the systemd user unit that
// `petrel server install` writes under $HOME/.config/systemd/user.
const UnitName = "petrel.service"

// InstallOptions are the settings of `petrel server install`.
type InstallOptions struct {
	IO *factory.IOStreams
	// Home is PETREL_HOME; it is made absolute before it goes into the unit.
	Home string
	// UserHome is the user's home directory ($HOME); the unit goes to
	// UserHome/.config/systemd/user/petrel.service.
	UserHome string
	// Binary is the absolute path of the petrel executable the unit starts.
	Binary string
}

// newInstallCmd returns `petrel server install`.
func newInstallCmd(f *factory.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "install",
		Short: "Write a systemd user unit that keeps `petrel server` running across reboots",
		Long: `Write ~/.config/systemd/user/petrel.service, which starts this petrel
binary as "server --home $PETREL_HOME" and restarts it on failure. It does not
run systemctl; it prints the command that enables and starts the unit.`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			bin, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the petrel binary: %w", err)
			}
			if resolved, err := filepath.EvalSymlinks(bin); err == nil {
				bin = resolved
			}
			userHome, err := os.UserHomeDir()
			if err != nil {
				return fmt.Errorf("find the home directory for the unit: %w", err)
			}
			return installRun(&InstallOptions{IO: f.IO, Home: f.Home, UserHome: userHome, Binary: bin})
		},
	}
}

// installRun writes the unit file (mode 0644, directories 0755 as systemd
// expects), prints the systemctl command on stdout and notes on stderr.
func installRun(opts *InstallOptions) error {
	home, err := filepath.Abs(opts.Home)
	if err != nil {
		return fmt.Errorf("make PETREL_HOME %q absolute: %w", opts.Home, err)
	}
	dir := filepath.Join(opts.UserHome, ".config", "systemd", "user")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, UnitName)
	if err := os.WriteFile(path, []byte(unitText(opts.Binary, home)), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(opts.IO.ErrOut, "wrote %s\nto start it now and at every login/boot, run:\n", path)
	fmt.Fprintln(opts.IO.Out, "systemctl --user enable --now petrel")
	fmt.Fprintln(opts.IO.ErrOut, "(to keep it running without a login session: loginctl enable-linger $USER)")
	return nil
}

// unitText is the systemd user unit for a petrel server on home. Arguments
// are quoted as systemd's ExecStart syntax reads them (systemd.service(5)).
// KillMode=process, as containerd.service has it: stopping or restarting
// the unit signals the server only, so the shims, their workloads and the
// services' load balancers in the same cgroup keep running for the next
// server to adopt (the default, control-group, would kill them all).
func unitText(bin, home string) string {
	return fmt.Sprintf(`[Unit]
Description=petrel local engine (PETREL_HOME=%s)

[Service]
ExecStart=%s server --home %s
Restart=on-failure
RestartSec=2
KillMode=process

[Install]
WantedBy=default.target
`, home, systemdQuote(bin), systemdQuote(home))
}

// systemdQuote double-quotes s for an ExecStart line when it holds spaces,
// quotes, backslashes or specifiers (%), escaping them as systemd.syntax(7) says.
func systemdQuote(s string) string {
	if !strings.ContainsAny(s, " \t\"'\\%$") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`)
	return `"` + r.Replace(s) + `"`
}
