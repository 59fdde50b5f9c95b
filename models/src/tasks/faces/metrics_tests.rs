//! The biometric figures on cases small enough to compute by hand.

use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn roc_auc_eer_and_tar_by_hand() {
    // Sorted: 0.1 G, 0.2 I, 0.4 G, 0.5 I, 0.6 I.
    let roc = Roc::new(&[0.1, 0.4], &[0.2, 0.5, 0.6]).unwrap();
    let want = [
        (0.1, 0.0, 0.5),
        (0.2, 1.0 / 3.0, 0.5),
        (0.4, 1.0 / 3.0, 1.0),
        (0.5, 2.0 / 3.0, 1.0),
        (0.6, 1.0, 1.0),
    ];
    assert_eq!(roc.points.len(), 6);
    for (p, w) in roc.points[1..].iter().zip(&want) {
        assert!(close(p.0, w.0) && close(p.1, w.1) && close(p.2, w.2), "{p:?} vs {w:?}");
    }
    // 5 of the 6 genuine/impostor pairings have the genuine pair closer.
    assert!(close(roc.auc(), 5.0 / 6.0), "{}", roc.auc());
    // FAR - FRR goes from -1/6 (t = 0.2) to +1/3 (t = 0.4): a third of the way, both 1/3.
    let (eer, t) = roc.eer();
    assert!(close(eer, 1.0 / 3.0) && close(t, 0.2 + 0.2 / 3.0), "{eer} at {t}");
    assert!(close(roc.tar_at_far(0.0), 0.5));
    assert!(close(roc.tar_at_far(0.34), 1.0));
    let (best, acc) = roc.best_threshold();
    assert!(close(best, 0.4) && close(acc, (1.0 + 2.0 / 3.0) / 2.0), "{best} {acc}");
    assert!(close(
        accuracy_at(&[0.1, 0.4], &[0.2, 0.5, 0.6], 0.15),
        (0.5 + 1.0) / 2.0
    ));
}

#[test]
fn ties_count_one_half_and_perfect_separation_is_one() {
    let tie = Roc::new(&[0.3], &[0.3]).unwrap();
    assert!(close(tie.auc(), 0.5));
    let perfect = Roc::new(&[0.1, 0.2], &[0.5, 0.7, 0.9]).unwrap();
    assert!(close(perfect.auc(), 1.0));
    assert!(close(perfect.eer().0, 0.0));
    assert!(close(perfect.tar_at_far(1e-3), 1.0));
    assert!(Roc::new(&[], &[1.0]).is_none());
}

#[test]
fn pairs_split_into_genuine_and_impostor() {
    let e = vec![vec![0.0, 0.0], vec![3.0, 4.0], vec![0.0, 1.0]];
    let (g, i) = pair_distances(&e, &[1, 1, 2]);
    assert_eq!(g, vec![5.0]);
    assert!(i.len() == 2 && close(i[0], 1.0) && close(i[1], 18f64.sqrt()), "{i:?}");
    let (v, _) = verify(&e, &[1, 1, 2], 2.0).unwrap();
    assert_eq!((v.genuine_pairs, v.impostor_pairs), (1, 2));
    // The genuine pair (5) is farther than both impostors: AUC 0.
    assert!(close(v.auc, 0.0));
}

#[test]
fn identification_ranks_and_open_set_by_hand() {
    let e: Vec<Vec<f32>> = [0.0, 0.1, 0.6, 1.0, 1.1, 2.0, 2.2].iter().map(|&v| vec![v]).collect();
    let labels = [1, 1, 1, 2, 2, 3, 3];
    // Gallery 0.0 (1), 1.0 (2), 2.0 (3); the probe 0.6 is nearer subject 2 (0.4 < 0.6).
    let id = identify(&e, &labels, 1, 0.3);
    assert_eq!(id.probes, 4);
    assert!(close(id.rank1, 0.75) && close(id.rank5, 1.0), "{id:?}");
    // Only subject 1 enrolled: 0.1 accepted, 0.6 rejected; 1.1 and 2.2 rejected.
    assert!(
        close(id.open_set_dir, 0.5) && close(id.open_set_false_alarm, 0.0),
        "{id:?}"
    );
    let loose = identify(&e, &labels, 1, 1.5);
    // Now 0.6 is accepted as 1, and 1.1 (subject 2, unenrolled) is a false alarm; 2.2 is not.
    assert!(
        close(loose.open_set_dir, 1.0) && close(loose.open_set_false_alarm, 0.5),
        "{loose:?}"
    );
}
