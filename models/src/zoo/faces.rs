//! The faces models of the zoo, written with the Keras-like API.
