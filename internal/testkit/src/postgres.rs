//! The test databases of the PostgreSQL tests.

/// Drops `database` on the server of `admin_url` (whose user may drop it), closing any
/// connection still open to it. Meant for `Drop`, which runs outside any async context it
/// could borrow (also while a failed test unwinds), so it runs on a thread with a runtime of
/// its own. Best effort: a failure leaves a database behind, which is only litter, and is
/// printed.
pub fn drop_database_blocking(admin_url: &str, database: &str) {
    let (admin_url, name) = (admin_url.to_string(), database.to_string());
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
                .await
                .ok()?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .ok()?;
            sqlx::Connection::close(conn).await.ok()
        })
    })
    .join();
    if !matches!(dropped, Ok(Some(()))) {
        eprintln!("could not drop the test database {database}");
    }
}
