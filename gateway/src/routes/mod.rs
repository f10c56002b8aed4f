//! Route table: every path, method and handler in one place.

mod feed;
mod functions;
mod modules;
pub(crate) mod outputs;
mod sinks;
mod system;

use actix_web::{Resource, web};

pub(crate) use system::{method_not_allowed, no_route};

fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Registers every route. Keep in sync with `openapi.json` (a test checks).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(system::healthz)))
        .service(resource("/metrics").route(web::get().to(system::metrics)))
        .service(resource("/v1/openapi.json").route(web::get().to(system::openapi)))
        .service(resource("/v1/modules").route(web::post().to(modules::upload)))
        .service(resource("/v1/modules/{hash}").route(web::get().to(modules::download)))
        .service(resource("/v1/gc").route(web::post().to(modules::gc)))
        .service(resource("/v1/functions").route(web::get().to(functions::list)))
        .service(
            resource("/v1/functions/{name}")
                .route(web::get().to(functions::show))
                .route(web::put().to(functions::bind)),
        )
        .service(resource("/v1/functions/{name}/start").route(web::post().to(functions::start)))
        .service(resource("/v1/functions/{name}/stop").route(web::post().to(functions::stop)))
        .service(resource("/v1/functions/{name}/pin").route(web::post().to(functions::pin)))
        .service(resource("/v1/functions/{name}/unpin").route(web::post().to(functions::unpin)))
        .service(resource("/v1/functions/{name}/logs").route(web::get().to(functions::logs)))
        .service(resource("/v1/functions/{name}/outputs").route(web::get().to(outputs::outputs)))
        .service(resource("/v1/functions/{name}/sinks").route(web::get().to(sinks::list)))
        .service(
            resource("/v1/functions/{name}/sinks/{sink}")
                .route(web::put().to(sinks::set))
                .route(web::delete().to(sinks::remove)),
        )
        .service(
            resource("/v1/functions/{name}/sinks/{sink}/retry").route(web::post().to(sinks::retry)),
        )
        .service(web::resource("/v1/functions/{rest:.*}").to(functions::bad_function_path))
        .service(resource("/v1/feed/snapshot").route(web::get().to(feed::snapshot)))
        .service(resource("/v1/feed").route(web::get().to(feed::feed)))
        .service(resource("/v1/runners/{runner}/report").route(web::post().to(feed::report)))
        .service(resource("/v1/runners/{runner}/outcomes").route(web::post().to(feed::outcomes)));
}
