# The license API's platform on Google Cloud, as the seed's SUP-02 describes it: a private GKE
# cluster in its own VPC, Cloud SQL (PostgreSQL) and Memorystore (Redis) reached over private
# service access, the JWT secret in Secret Manager, a workload identity for the API. Each resource
# here is one of the classes `verdict plan-risk` watches (lib/policy/plan-risk.ts).

locals {
  name   = "license-${var.environment}"
  labels = merge({ app = "license-api", environment = var.environment, managed-by = "opentofu" }, var.labels)
}

# ---------------------------------------------------------------- network

resource "google_compute_network" "main" {
  project                 = var.project_id
  name                    = local.name
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "gke" {
  project                  = var.project_id
  name                     = "${local.name}-gke"
  region                   = var.region
  network                  = google_compute_network.main.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.pods_cidr
  }
  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.services_cidr
  }
}

# Private nodes reach the internet (image pulls from outside Artifact Registry) through Cloud NAT.
resource "google_compute_router" "main" {
  project = var.project_id
  name    = local.name
  region  = var.region
  network = google_compute_network.main.id
}

resource "google_compute_router_nat" "main" {
  project                            = var.project_id
  name                               = local.name
  router                             = google_compute_router.main.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
}

# Google's load-balancer health checkers reach the pods' port (the seed's 8000).
resource "google_compute_firewall" "allow_health_checks" {
  project       = var.project_id
  name          = "${local.name}-allow-health-checks"
  network       = google_compute_network.main.id
  direction     = "INGRESS"
  source_ranges = ["130.211.0.0/22", "35.191.0.0/16"]
  allow {
    protocol = "tcp"
    ports    = ["8000"]
  }
}

# Private service access: Cloud SQL and Memorystore get addresses inside the VPC.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${local.name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 16
  network       = google_compute_network.main.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.main.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

# ---------------------------------------------------------------- GKE

resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = "${local.name}-nodes"
  display_name = "GKE nodes of ${local.name}"
}

resource "google_container_cluster" "primary" {
  project                  = var.project_id
  name                     = "${var.environment}-gke-cluster"
  location                 = var.zone
  network                  = google_compute_network.main.id
  subnetwork               = google_compute_subnetwork.gke.id
  min_master_version       = var.gke_min_master_version
  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = var.environment == "production"
  resource_labels          = local.labels

  release_channel {
    channel = "UNSPECIFIED" # upgrades happen through this configuration, reviewed by plan-risk
  }
  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }
  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = var.master_cidr
  }
  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }
}

resource "google_container_node_pool" "primary" {
  project    = var.project_id
  name       = "primary"
  cluster    = google_container_cluster.primary.id
  location   = var.zone
  version    = var.gke_node_version
  node_count = var.node_count

  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }
  management {
    auto_repair  = true
    auto_upgrade = false
  }
  node_config {
    machine_type    = var.node_machine_type
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    labels          = local.labels
    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }
}

# ---------------------------------------------------------------- data

resource "google_sql_database_instance" "main" {
  project             = var.project_id
  name                = "${local.name}-db"
  region              = var.region
  database_version    = "POSTGRES_16"
  deletion_protection = true
  depends_on          = [google_service_networking_connection.private_services]

  settings {
    tier              = var.db_tier
    availability_type = var.db_availability_type
    user_labels       = local.labels
    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.main.id
    }
    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }
    database_flags {
      name  = "max_connections"
      value = "200"
    }
  }
}

resource "google_sql_database" "licenses" {
  project  = var.project_id
  name     = "licenses"
  instance = google_sql_database_instance.main.name
}

resource "google_redis_instance" "cache" {
  project            = var.project_id
  name               = "${local.name}-cache"
  region             = var.region
  tier               = var.redis_tier
  memory_size_gb     = var.redis_memory_gb
  authorized_network = google_compute_network.main.id
  connect_mode       = "PRIVATE_SERVICE_ACCESS"
  labels             = local.labels
  depends_on         = [google_service_networking_connection.private_services]
}

# ---------------------------------------------------------------- identity and secrets

resource "google_secret_manager_secret" "jwt" {
  project   = var.project_id
  secret_id = "${local.name}-jwt-secret"
  labels    = local.labels
  replication {
    auto {}
  }
}

resource "google_service_account" "license_api" {
  project      = var.project_id
  account_id   = "${local.name}-api"
  display_name = "license-api workload (${var.environment})"
}

# The Kubernetes ServiceAccount coditect/license-api acts as this account (Workload Identity): no key.
resource "google_service_account_iam_member" "license_api_workload_identity" {
  service_account_id = google_service_account.license_api.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[coditect/license-api]"
}

resource "google_secret_manager_secret_iam_member" "license_api_jwt" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.jwt.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.license_api.email}"
}

resource "google_project_iam_member" "license_api_sql" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.license_api.email}"
}
