# The production environment (the seed's "cd opentofu/environments/production && tofu init && tofu plan -out=tfplan").
# Every plan of it is judged by `verdict plan-risk` (.github/workflows/infrastructure.yml).

terraform {
  required_version = ">= 1.10"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
  backend "gcs" {
    bucket = "coditect-cloud-infra-tofu-state"
    prefix = "license-platform/production"
  }
}

provider "google" {
  project = var.project_id
  region  = "us-central1"
}

variable "project_id" {
  type    = string
  default = "coditect-cloud-infra"
}

module "license_platform" {
  source = "../../modules/license-platform"

  project_id  = var.project_id
  environment = "production"
  zone        = "us-central1-a"

  subnet_cidr   = "10.10.0.0/20"
  pods_cidr     = "10.20.0.0/14"
  services_cidr = "10.24.0.0/20"
  master_cidr   = "172.16.0.0/28"

  gke_min_master_version = "1.33"
  gke_node_version       = "1.33"
  node_count             = 3

  db_tier              = "db-custom-2-7680"
  db_availability_type = "REGIONAL"
  redis_tier           = "STANDARD_HA"
}

output "cluster_name" {
  value = module.license_platform.cluster_name
}

output "sql_instance" {
  value = module.license_platform.sql_instance
}
