output "cluster_name" {
  value = google_container_cluster.primary.name
}

output "cluster_location" {
  value = google_container_cluster.primary.location
}

output "sql_instance" {
  value = google_sql_database_instance.main.name
}

output "sql_private_ip" {
  value = google_sql_database_instance.main.private_ip_address
}

output "redis_host" {
  value = google_redis_instance.cache.host
}

output "license_api_service_account" {
  value = google_service_account.license_api.email
}
