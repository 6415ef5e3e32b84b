package main

import (
	"fmt"
	"net"
	"os"

	"github.com/spf13/cobra"

	"keppel/internal/config"
	"keppel/internal/server"
)

func newServerCommand() *cobra.Command {
	var configFile string
	loadConfig := func() (config.Config, error) {
		path := configFile
		if path == "" {
			path = os.Getenv("KEPPEL_CONFIG_FILE")
		}
		return config.Load(path, os.LookupEnv)
	}

	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the registry (embedded mode: SQLite and filesystem unless configured otherwise)",
		Long: `Run the registry. With no configuration it listens on 127.0.0.1:5000 and keeps
metadata (SQLite) and content (filesystem) in ./keppel-data.

Configuration comes from a YAML file (--config or KEPPEL_CONFIG_FILE) and
KEPPEL_* environment variables, which win. See docs/configuration.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			return runServer(cmd, cfg)
		},
	}
	cmd.PersistentFlags().StringVar(&configFile, "config", "", "path to the YAML configuration file")
	cmd.AddCommand(newServerCheckCommand(loadConfig), newServerMigrateCommand(loadConfig), newServerHealthmonitorCommand())

	cmd.AddCommand(&cobra.Command{
		Use:   "api",
		Short: "Run only the API (distributed mode: run `keppel server janitor` separately)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			embedded := false
			cfg.Janitor.Embedded = &embedded
			return runServer(cmd, cfg)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "janitor",
		Short: "Run only the background jobs (any number of janitor processes may run)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			log := server.NewLogger(cfg)
			srv, err := server.Build(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer srv.Close()
			log.Info("keppel janitor is running", "listen_address", cfg.Janitor.ListenAddress)
			return srv.RunJanitor(cmd.Context())
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "validate-config",
		Short: "Check the configuration and print the effective values",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "configuration is valid")
			fmt.Fprintln(cmd.OutOrStdout(), "  listen address:", cfg.API.ListenAddress)
			fmt.Fprintln(cmd.OutOrStdout(), "  public URL:    ", cfg.API.PublicURL)
			if cfg.UsesPostgres() {
				fmt.Fprintln(cmd.OutOrStdout(), "  metadata:       PostgreSQL")
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "  metadata:       SQLite at", cfg.Database.SQLitePath)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "  storage:       ", describeStorage(cfg.Storage))
			if cfg.Storage.MigrateFrom != nil {
				fmt.Fprintln(cmd.OutOrStdout(), "  moving from:   ", describeStorage(*cfg.Storage.MigrateFrom))
			}
			return nil
		},
	})
	return cmd
}

func runServer(cmd *cobra.Command, cfg config.Config) error {
	log := server.NewLogger(cfg)
	srv, err := server.Build(cmd.Context(), cfg, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	out := cmd.ErrOrStderr()
	return srv.Run(cmd.Context(), func(addr net.Addr) {
		log.Info("keppel is listening", "address", addr.String(), "public_url", cfg.API.PublicURL)
		if srv.AdminPasswordGenerated != "" {
			fmt.Fprintf(out, `
The administrator account was created:
    username: admin
    password: %s
This password is shown only once; set KEPPEL_ADMIN_PASSWORD to choose your own.

Log in:            keppel login %[2]s -u admin      (or docker login, podman login)
Create an account: keppel account create library --auth-tenant-id default
Push an image:     keppel push ./image-layout %[2]s/library/hello:latest   (or docker push, crane push)

`, srv.AdminPasswordGenerated, hostOf(cfg.API.PublicURL))
		}
	})
}

// describeStorage names a storage configuration without its secrets.
func describeStorage(s config.Storage) string {
	switch s.Driver {
	case "filesystem":
		return "filesystem at " + s.Path
	case "s3":
		where := "bucket " + s.S3.Bucket
		if s.S3.Bucket == "" {
			where = "a bucket per account named " + s.S3.BucketPrefix + "<account>"
		}
		endpoint := s.S3.Endpoint
		if endpoint == "" {
			endpoint = "AWS"
		}
		return fmt.Sprintf("S3 at %s (region %s), %s", endpoint, s.S3.Region, where)
	case "swift":
		return fmt.Sprintf("Swift via %s as %s, containers %s<account>", s.Swift.AuthURL, s.Swift.UserName, s.Swift.ContainerPrefix)
	default:
		return s.Driver
	}
}
