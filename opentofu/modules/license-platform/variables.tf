variable "project_id" {
  type        = string
  description = "Google Cloud project, e.g. coditect-cloud-infra"
}

variable "environment" {
  type        = string
  description = "staging or production: names every resource"
  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "region" {
  type    = string
  default = "us-central1"
}

variable "zone" {
  type        = string
  description = "The GKE cluster's location (zonal, as the seed's us-central1-a)"
  default     = "us-central1-a"
}

variable "subnet_cidr" {
  type = string
}

variable "pods_cidr" {
  type = string
}

variable "services_cidr" {
  type = string
}

variable "master_cidr" {
  type        = string
  description = "The /28 of the private control plane"
}

variable "gke_min_master_version" {
  type        = string
  description = "Control-plane version floor: a change is a GKE upgrade (plan-risk: high)"
}

variable "gke_node_version" {
  type        = string
  description = "Node pool version: a change drains and replaces every node (plan-risk: high)"
}

variable "node_count" {
  type    = number
  default = 3
}

variable "node_machine_type" {
  type    = string
  default = "e2-standard-4"
}

variable "db_tier" {
  type        = string
  description = "Cloud SQL machine tier: a change restarts the instance (plan-risk: high)"
}

variable "db_availability_type" {
  type    = string
  default = "ZONAL"
}

variable "redis_tier" {
  type    = string
  default = "BASIC"
}

variable "redis_memory_gb" {
  type    = number
  default = 1
}

variable "labels" {
  type    = map(string)
  default = {}
}
