//! The application: the rules of the service, one type per resource, taking domain inputs and
//! returning domain results. Front doors (`grpc/`, and `rest/` when it lands) convert,
//! authenticate and map errors around it; nothing here knows tonic or HTTP.

pub mod calls;
pub mod page_budget;
pub mod retention;
pub mod watches;
