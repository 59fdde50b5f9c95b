//! The faces task, as the recipe reads: `data` (held-out subjects, the P x K sampler), `align`
//! (BlazeFace eyes to level chips), the zoo's embedding net, `loss` (triplet mining and the softmax head, as graph ops), `train` (the fit
//! loop with collapse detection), `embed` (faces to embeddings, for trained and pretrained
//! models alike), `metrics` (verification and identification, as biometrics defines them),
//! `gallery` (enrolment files) and `pictures` (the ROC plot).

pub mod align;
pub mod data;
pub mod embed;
pub mod evaluate;
pub mod gallery;
pub mod loss;
pub mod metrics;
pub mod pictures;
pub mod train;
