"""What the CMS's own tooling talks to: its CLI's GraphQL API (`/graphql`) and the telemetry
client its build installs into the CMS's GraphQL function (`/clients/latest.js`)."""
